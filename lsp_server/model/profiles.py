"""Prompt profiles: how a model is asked for a pass list and how its answer is read.

A profile turns a function's IR into prompt tokens, reads the generated text back into a `Proposal`
(or None for an answer without a usable pass list) and says when an answer is complete so generation
can stop early. Parsing never raises: model output is untrusted text.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Protocol

from . import formats
from .passes import filter_passes
from .types import ModelError, Proposal


class Vocabulary(Protocol):
    """What a profile needs from the loaded model's tokenizer."""

    bos: int
    eos: int

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]: ...

    def special_token(self, text: str) -> int | None: ...


class Profile(Protocol):
    name: str
    default_ctx: int  # context to allocate; 0: the model's training context
    reads_prefix: bool  # a function longer than the context is read by its head rather than skipped
    max_answer_tokens: int

    def check(self, vocab: Vocabulary) -> None: ...  # ModelError when the model does not fit the profile

    def prompt_tokens(self, function_ir: str, vocab: Vocabulary) -> list[int]: ...

    def parse(self, text: str, known_passes: Collection[str] | None) -> Proposal | None: ...

    def done(self, text: str) -> bool: ...


def _make_proposal(passes: str, before: int | None, after: int | None, raw: str, known) -> Proposal | None:
    filtered = filter_passes(passes, known)
    if not filtered.passes:
        return None
    return Proposal(filtered.passes, before, after, raw, filtered.note)


# --------------------------------------------------------------------------------------------------
# passpilot: our own model (format in formats.py)


class PassPilotProfile:
    name = "passpilot"
    default_ctx = 0
    max_answer_tokens = formats.MAX_ANSWER_TOKENS
    # Size gains sit mostly in long functions; the head of a function (its allocas, loads, first blocks)
    # still tells the model which kind of list fits, and `opt` checks whatever it proposes.
    reads_prefix = True

    def check(self, vocab: Vocabulary) -> None:
        if vocab.special_token(formats.SEP_TOKEN) is None:
            raise ModelError(
                f"this GGUF has no {formats.SEP_TOKEN} token, so it is not a PassPilot model; "
                "for Meta's LLM Compiler FTD set model.profile to 'llm-compiler-ftd'"
            )

    def prompt_tokens(self, function_ir: str, vocab: Vocabulary) -> list[int]:
        return self.prompt_tokens_from_text(formats.prompt_text(function_ir), vocab)

    def prompt_tokens_from_text(self, prompt_text: str, vocab: Vocabulary) -> list[int]:
        """Prompt tokens for an already normalized `formats.prompt_text`."""
        sep = vocab.special_token(formats.SEP_TOKEN)
        assert sep is not None
        return [vocab.bos, *vocab.tokenize(prompt_text, add_bos=False, special=False), sep]

    def answer_tokens(self, answer_text: str, vocab: Vocabulary) -> list[int]:
        """Training target for an answer (`formats.format_answer`): its tokens and EOS."""
        return [*vocab.tokenize(answer_text, add_bos=False, special=False), vocab.eos]

    def parse(self, text: str, known_passes: Collection[str] | None) -> Proposal | None:
        return parse_passpilot_answer(text, known_passes)

    def done(self, text: str) -> bool:
        # EOS ends a well-formed answer; this only stops a model that goes on after the counts
        # (two counts of at most 9 digits each fit in 24 characters).
        _, newline, rest = text.partition("\n")
        return bool(newline) and ("\n" in rest or len(rest) > 24)


def parse_passpilot_answer(text: str, known_passes: Collection[str] | None = None) -> Proposal | None:
    parsed = formats.parse_answer(text)
    if not parsed.passes:
        return None
    return _make_proposal(parsed.passes, parsed.before, parsed.after, text, known_passes)


# --------------------------------------------------------------------------------------------------
# llm-compiler-ftd: Meta's LLM Compiler FTD (flag tuning and disassembly) models

FTD_PROMPT = "[INST] Tell me how to optimize this LLVM-IR for object file size:\n\n<code>{ir}</code> [/INST]"


def ftd_prompt(function_ir: str) -> str:
    return FTD_PROMPT.format(ir=function_ir)


# `opt -p 'x'`, `opt -passes="x"`, `--passes='x'`, `-p=x`; quoted first, then unquoted.
_QUOTED = re.compile(r"(?:(?<![\w-])-{1,2}passes|(?<![\w-])-p)(?:\s*=\s*|\s+)(['\"])(.*?)\1", re.S)
_UNQUOTED = re.compile(r"(?:(?<![\w-])-{1,2}passes|(?<![\w-])-p)(?:\s*=\s*|\s+)([^\s'\"`]+)")
_COUNT_PAIR = re.compile(r"(\d+)\s*(?:->|→|to)\s*(\d+)")
_COUNT_ONE = re.compile(r"instruction count[^0-9<`]{0,40}?(\d+)", re.I)


def _answer_part(text: str) -> str:
    """The model's answer without an echoed prompt."""
    if "[/INST]" in text:
        return text.rsplit("[/INST]", 1)[1]
    return text


def parse_ftd_answer(text: str) -> tuple[str | None, int | None, int | None]:
    """(pass list, predicted before, predicted after) from an LLM Compiler FTD answer. Never raises."""
    answer = _answer_part(text)
    match = _QUOTED.search(answer) or _UNQUOTED.search(answer)
    if match is None:
        return None, None, None
    passes = match.group(match.lastindex).strip()
    # Counts, when the model states them, follow the pass list and precede the optimized code.
    tail = answer[match.end():].split("<code>", 1)[0]
    before = after = None
    pair = _COUNT_PAIR.search(tail)
    if pair:
        before, after = int(pair.group(1)), int(pair.group(2))
    else:
        ones = _COUNT_ONE.findall(tail)
        if len(ones) >= 2:
            before, after = int(ones[0]), int(ones[1])
        elif len(ones) == 1:
            after = int(ones[0])
    return passes, before, after


class LLMCompilerFTDProfile:
    name = "llm-compiler-ftd"
    default_ctx = 8192
    max_answer_tokens = 384
    reads_prefix = False  # its prompt wraps the code in tags; a cut function would not be what it was trained on

    def check(self, vocab: Vocabulary) -> None:
        return None

    def prompt_tokens(self, function_ir: str, vocab: Vocabulary) -> list[int]:
        return vocab.tokenize(ftd_prompt(function_ir), add_bos=True, special=False)

    def parse(self, text: str, known_passes: Collection[str] | None) -> Proposal | None:
        passes, before, after = parse_ftd_answer(text)
        if not passes:
            return None
        return _make_proposal(passes, before, after, text, known_passes)

    def done(self, text: str) -> bool:
        answer = _answer_part(text)
        match = _QUOTED.search(answer)
        if match is None:
            return False
        tail = answer[match.end():]
        # Stop once the optimized code starts, or once both counts have been stated.
        return "<code>" in tail or _COUNT_PAIR.search(tail) is not None or len(_COUNT_ONE.findall(tail)) >= 2


PROFILES: dict[str, type] = {
    PassPilotProfile.name: PassPilotProfile,
    LLMCompilerFTDProfile.name: LLMCompilerFTDProfile,
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]()
    except KeyError:
        raise ModelError(f"unknown model profile {name!r}; expected one of: {', '.join(PROFILES)}") from None
