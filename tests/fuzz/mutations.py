"""Mutations of real IR for the fuzz campaign: what editors, truncated downloads and bad tools produce.

Shared by the CI-sized fuzz tests and the long runs in `scripts/fuzz_cli.py`. Every mutation is a function
of a seeded `random.Random`, so any failing input can be regenerated from its seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Characters some tools treat as line breaks and LSP does not, a lone CR, and other odd code points.
ODD_TEXT = ["\r", "\r\n", "\u2028", "\u2029", "\u0085", "\x0c", "\x0b", "\x1e", "\x1c", "\x00", "\ufeff", "\U0001F600", "é"]
IR_FRAGMENTS = [
    "define", "declare", "}", "{", "(", ")", "[", "]", "<", ">", '"', ";", "/*", "*/", "!0 = !{}", "@x = global i32 0",
    "attributes #0 = { nounwind }", "%x = add i32 1, 2", "ret void", "blockaddress(@f, %bb)", "!dbg !99", "#7",
    "define i32 @z() {\n  ret i32 0\n}", "i32", "ptr", "label %nowhere", "\\22", "c\"", "@\"", "$c = comdat any",
]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def delete_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    start = rng.randrange(len(lines))
    del lines[start : start + rng.randint(1, 3)]
    return b"\n".join(lines)


def duplicate_line(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    index = rng.randrange(len(lines))
    lines.insert(index, lines[index])
    return b"\n".join(lines)


def swap_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[a], lines[b] = lines[b], lines[a]
    return b"\n".join(lines)


def flip_byte(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return b"\xff"
    index = rng.randrange(len(data))
    return data[:index] + bytes([data[index] ^ (1 << rng.randrange(8))]) + data[index + 1 :]


def invalid_utf8(rng: random.Random, data: bytes) -> bytes:
    index = rng.randrange(len(data) + 1)
    return data[:index] + rng.choice([b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]) + data[index:]


def huge_line(rng: random.Random, data: bytes) -> bytes:
    index = rng.randrange(len(data) + 1)
    filler = rng.choice([b"; " + b"x" * 200_000, b"@big = global [1 x i8] c\"" + b"a" * 100_000 + b"\"", b"(" * 5_000])
    return data[:index] + b"\n" + filler + b"\n" + data[index:]


def odd_characters(rng: random.Random, data: bytes) -> bytes:
    index = rng.randrange(len(data) + 1)
    return data[:index] + rng.choice(ODD_TEXT).encode() + data[index:]


def ir_fragment(rng: random.Random, data: bytes) -> bytes:
    index = rng.randrange(len(data) + 1)
    return data[:index] + rng.choice(IR_FRAGMENTS).encode() + data[index:]


def replace_token(rng: random.Random, data: bytes) -> bytes:
    pairs = [(b"i32", b"i64"), (b"{", b""), (b"}", b""), (b"ptr", b"i8"), (b"define", b"declare"), (b"=", b""),
             (b"ret", b"br"), (b"internal", b"private"), (b"#0", b"#9"), (b"!0", b"!77"), (b"\n", b"\r")]
    old, new = rng.choice(pairs)
    positions = [i for i in range(len(data)) if data.startswith(old, i)][:200]
    if not positions:
        return data + new
    index = rng.choice(positions)
    return data[:index] + new + data[index + len(old) :]


def join_lines(rng: random.Random, data: bytes) -> bytes:
    """LLVM needs no line breaks outside comments: put a line on the previous one (keeps the IR valid)."""
    lines = _lines(data)
    candidates = [i for i in range(1, len(lines)) if b";" not in lines[i - 1] and b";" not in lines[i]]
    if not candidates:
        return data
    index = rng.choice(candidates)
    lines[index - 1 : index + 1] = [lines[index - 1] + b" " + lines[index]]
    return b"\n".join(lines)


def split_after_comma(rng: random.Random, data: bytes) -> bytes:
    """A line break after a comma outside strings and comments (keeps the IR valid)."""
    positions = [i for i in range(len(data)) if data[i : i + 2] == b", "][:500]
    for index in rng.sample(positions, min(len(positions), 20)):
        line_start = data.rfind(b"\n", 0, index) + 1
        prefix = data[line_start:index]
        if b";" not in prefix and prefix.count(b'"') % 2 == 0:
            return data[: index + 1] + b"\n    " + data[index + 2 :]
    return data


def crlf(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def comment_lines(rng: random.Random, data: bytes) -> bytes:
    """Comments that mention top-level keywords and braces (keeps the IR valid)."""
    lines = _lines(data)
    index = rng.randrange(len(lines) + 1)
    comment = rng.choice([b"; define i32 @ghost() {", b"; }", b"/* define { } */", b";\xe2\x80\xa8 odd separator"])
    lines.insert(index, comment)
    return b"\n".join(lines)


MUTATIONS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    truncate, delete_lines, duplicate_line, swap_lines, flip_byte, invalid_utf8, huge_line, odd_characters,
    ir_fragment, replace_token, join_lines, split_after_comma, crlf, comment_lines,
)


def mutate(seed: int, data: bytes) -> tuple[bytes, list[str]]:
    """1 to 3 mutations of `data`, chosen by `seed`; returns the input and the mutation names."""
    rng = random.Random(seed)
    applied = []
    for _ in range(rng.randint(1, 3)):
        mutation = rng.choice(MUTATIONS)
        data = mutation(rng, data)
        applied.append(mutation.__name__)
    return data, applied


def seed_corpus(limit_benchmark: int = 40) -> list[tuple[str, bytes]]:
    """Real IR to mutate: the examples, the test fixtures, and a spread of the public benchmark if built."""
    paths = [ROOT / "examples" / "example.ll", ROOT / "tests" / "lsp" / "fixtures" / "small.ll"]
    benchmark = sorted((ROOT / "data" / "benchmark").glob("*/*.ll"))
    if benchmark and limit_benchmark:
        step = max(1, len(benchmark) // limit_benchmark)
        paths += benchmark[::step][:limit_benchmark]
    return [(str(path.relative_to(ROOT)), path.read_bytes()) for path in paths if path.is_file()]
