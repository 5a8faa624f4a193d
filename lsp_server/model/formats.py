"""The `passpilot` model's prompt and answer format: the ONE definition that both the runtime and the
training pipeline (`training/model/`) use.

Token sequence of one example (ids, not text, around the IR so that no IR text can imitate them):

    <s> {normalize_function(function_ir)} <|passes|> {passes}\\n{before} {after} </s>
    |--------------- prompt ---------------------| |------------ answer --------------|

* `<s>`, `</s>`: the tokenizer's BOS/EOS (control tokens).
* `<|passes|>`: a control token that ends the prompt (`SEP_TOKEN`).
* `passes`: a pass pipeline as `opt -passes=` takes it, written compactly (no spaces).
* `before`/`after`: predicted instruction counts of the function before and after the pipeline.

The IR text is tokenized without special-token parsing, so IR containing the literal text `<|passes|>`
stays ordinary text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
UNK_TOKEN = "<unk>"
PAD_TOKEN = "<pad>"
SEP_TOKEN = "<|passes|>"

# Control tokens beyond BOS/EOS/UNK (sentencepiece `control_symbols`). Order fixes their ids.
CONTROL_TOKENS = (SEP_TOKEN, PAD_TOKEN)

# Pipeline syntax pieces that become single tokens next to the pass names.
STRUCTURE_TOKENS = (
    "module(",
    "function(",
    "function<eager-inv>(",
    "cgscc(",
    "loop(",
    "loop-mssa(",
    "default<Oz>",
    "default<Os>",
    "default<O1>",
    "default<O2>",
    "default<O3>",
)

# Longest answer the runtime lets the model write (pass list + counts), in tokens.
MAX_ANSWER_TOKENS = 192


def prompt_text(function_ir: str) -> str:
    """The text between `<s>` and `<|passes|>`: the function's normalized IR."""
    from lsp_server.ir.normalize import normalize_function

    return normalize_function(function_ir).strip() + "\n"


def format_answer(passes: str, before: int | None, after: int | None) -> str:
    """The text between `<|passes|>` and `</s>`."""
    compact = re.sub(r"\s+", "", passes)
    if before is None or after is None:
        return compact + "\n"
    return f"{compact}\n{int(before)} {int(after)}"


@dataclass(frozen=True)
class ParsedAnswer:
    passes: str
    before: int | None
    after: int | None
    complete: bool  # both counts present and nothing unexpected after them


_COUNTS = re.compile(r"\s*(\d{1,9})(?:\s+(\d{1,9}))?\s*")


def parse_answer(text: str) -> ParsedAnswer:
    """Parse generated answer text (without the EOS). Never raises.

    Well formed: `passes\\nB A`. Truncated (no newline yet): the whole text is the pass list and the counts
    are None. Garbage after the newline gives None counts.
    """
    text = text.replace("\r", "")
    passes, newline, rest = text.partition("\n")
    passes = re.sub(r"\s+", "", passes)
    if not newline:
        return ParsedAnswer(passes, None, None, False)
    match = _COUNTS.fullmatch(rest)
    if match is None:
        numbers = _COUNTS.match(rest)
        if numbers is None:
            return ParsedAnswer(passes, None, None, False)
        before = int(numbers.group(1))
        after = int(numbers.group(2)) if numbers.group(2) else None
        return ParsedAnswer(passes, before, after, False)
    before = int(match.group(1))
    after = int(match.group(2)) if match.group(2) else None
    return ParsedAnswer(passes, before, after, after is not None)
