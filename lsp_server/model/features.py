"""AutoPhase-style counts of one function's IR, given to the ranking model as one token per count.

A model whose context holds only the head of a long function still sees, in these tokens, how large the
whole function is and what it is made of (blocks, loops, memory operations, calls, switches, phis).
Counted on the normalized text (`lsp_server.ir.normalize`) with plain string work: no parse, no LLVM.
Each count becomes a control token `<|f:NAME=B|>` with B its log2 bucket (0, 1, 2-3, 4-7, ...), so that a
small model learns one embedding per (count, magnitude) instead of reading digits; the same function
always gets the same 31 tokens in the same order.
"""

from __future__ import annotations

import re

# Opcodes with their own field; every other instruction counts in `other`.
OPCODES = (
    "alloca", "load", "store", "getelementptr", "call", "br", "switch", "phi", "icmp", "select", "ret",
    "add", "sub", "mul", "and", "or", "xor", "shl", "lshr", "ashr", "sext", "zext", "trunc", "bitcast",
    "fcmp", "unreachable",
)
_LABEL = re.compile(r"^([-\w.$]+):")
_TARGETS = re.compile(r"label %([-\w.$]+)")
_DEFINE = re.compile(r"^define\b[^(]*\((.*)\)")
_SWITCH_CASE = re.compile(r"^\s+(\]|i\d+ -?\w+, label )")  # a `switch`'s case lines and closing bracket


def opcode(line: str) -> str:
    """`%3 = load i32, ptr %2` -> `load`; `store i32 ...` -> `store`; `tail call ...` -> `call`."""
    body = line.split("=", 1)[1] if re.match(r"\s*%[-\w.$]+\s*=", line) else line
    words = body.split()
    while words and words[0] in ("tail", "musttail", "notail"):
        words = words[1:]
    return words[0] if words else ""


def feature_counts(normalized_ir: str) -> dict[str, int]:
    counts = {"n": 0, "blocks": 1, "loops": 0, "args": 0, **{name: 0 for name in OPCODES}, "other": 0}
    block_order: dict[str, int] = {}
    block = 0
    for raw in normalized_ir.splitlines():
        line = raw.rstrip()
        if not line or line.startswith((";", "}", "declare", "attributes", "!")):
            continue
        header = _DEFINE.match(line)
        if header:
            params = header.group(1).strip()
            counts["args"] = 0 if not params or params == "..." else params.count(",") + 1
            continue
        label = _LABEL.match(line)
        if label:
            block += 1
            block_order[label.group(1)] = block
            counts["blocks"] += 1
            continue
        if not line.startswith(" ") or _SWITCH_CASE.match(line):
            continue
        name = opcode(line)
        counts["n"] += 1
        counts[name if name in counts and name in OPCODES else "other"] += 1
        if name in ("br", "switch"):
            # A branch back to this block or an earlier one closes a loop (blocks keep source order at -O0).
            counts["loops"] += any(block_order.get(t, block + 1) <= block for t in _TARGETS.findall(line))
    return counts


FEATURE_NAMES = ("n", "blocks", "loops", "args", *OPCODES, "other")
BUCKETS = 13  # 0, 1, 2-3, 4-7, ..., 2048 and more


def bucket(value: int) -> int:
    """0 -> 0, 1 -> 1, 2-3 -> 2, 4-7 -> 3, ..., capped at BUCKETS - 1."""
    return min(BUCKETS - 1, max(0, int(value)).bit_length())


def feature_token(name: str, value_bucket: int) -> str:
    return f"<|f:{name}={value_bucket}|>"


def all_feature_tokens() -> list[str]:
    """Every feature token a ranking model's vocabulary holds, in vocabulary order."""
    return [feature_token(name, b) for name in FEATURE_NAMES for b in range(BUCKETS)]


def feature_tokens(normalized_ir: str) -> list[str]:
    """The function's counts as feature tokens, in `FEATURE_NAMES` order."""
    counts = feature_counts(normalized_ir)
    return [feature_token(name, bucket(counts[name])) for name in FEATURE_NAMES]
