"""Parsing, verifying and counting with llvmlite (LLVM 22).

Each parse gets its own LLVM context: parses run in worker threads and an LLVMContext is not thread-safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import llvmlite.binding as llvm

_LOCATION = re.compile(r"(?:<[^>\n]*>|[^\s:]+):(\d+):(\d+):\s*(?:error:\s*)?(.*)")


@dataclass(frozen=True)
class IRError:
    """A problem in the text; `line` and `column` are 0-based, `column` counts characters."""

    line: int
    column: int
    message: str
    end_column: int | None = None

    def format(self, path: str) -> str:
        return f"{path}:{self.line + 1}:{self.column + 1}: {self.message}"


class InvalidIR(Exception):
    def __init__(self, errors: list[IRError]):
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def parse(text: str, *, verify: bool = True) -> llvm.ModuleRef:
    """Parse (and verify) IR text; raise `InvalidIR` with located errors."""
    if "\x00" in text:
        text = _without_nul_in_comments(text)
    context = llvm.create_context()
    try:
        module = llvm.parse_assembly(text, context=context)
    except RuntimeError as error:
        raise InvalidIR([_parse_error(str(error), text)]) from None
    except (UnicodeDecodeError, ValueError) as error:  # LLVM's message quoted a cut multi-byte character
        raise InvalidIR([_unreadable_message(text, error)]) from None
    if verify:
        try:
            module.verify()
        except RuntimeError as error:
            raise InvalidIR(_verifier_errors(str(error), text)) from None
        except (UnicodeDecodeError, ValueError) as error:
            raise InvalidIR([_unreadable_message(text, error)]) from None
        problem = _target_problem(module, text)
        if problem is not None:
            raise InvalidIR([problem])
    return module


def _without_nul_in_comments(text: str) -> str:
    """llvmlite hands LLVM a C string, which a NUL would cut short; LLVM itself skips one in a comment.

    NULs in comments become spaces (offsets stay); a NUL anywhere else is a located error."""
    cleaned = _COMMENT.sub(lambda m: m.group().replace("\x00", " ") if m.group().startswith((";", "/*")) else m.group(), text)
    index = cleaned.find("\x00")
    if index >= 0:
        line = cleaned.count("\n", 0, index)
        column = index - (cleaned.rfind("\n", 0, index) + 1)
        raise InvalidIR([IRError(line, column, "a NUL character is not allowed here", column + 1)])
    return cleaned


_COMMENT = re.compile(r'"[^"]*"?|;[^\n\r]*|/\*(?:[^*]|\*(?!/))*(?:\*/)?')


def _unreadable_message(text: str, error: Exception) -> IRError:
    """LLVM rejected the text but its message is not UTF-8; point at the first non-ASCII line instead."""
    for number, line in enumerate(text.split("\n")):
        for column, char in enumerate(line):
            if ord(char) > 127:
                return IRError(number, column, "LLVM cannot read this text here (non-ASCII character)", column + 1)
    return IRError(0, 0, f"LLVM rejected the module ({type(error).__name__})")


_TRIPLE_LINE = re.compile(r'^\s*target\s+triple\s*=')


def _target_problem(module: llvm.ModuleRef, text: str) -> IRError | None:
    """`opt` builds a target machine for the module's triple and refuses a triple it does not know."""
    triple = module.triple
    if not triple:
        return None
    _initialize_targets()
    try:
        llvm.Target.from_triple(triple)
    except RuntimeError as error:
        lines = text.split("\n")
        line = next((n for n, t in enumerate(lines) if _TRIPLE_LINE.match(t)), 0)
        start = max(lines[line].find('"'), 0) if lines else 0
        detail = " ".join(str(error).split()) or "unknown target"
        return IRError(line, start, f"unknown target triple {triple!r}: {detail}", len(lines[line]) if lines else 1)
    return None


def _initialize_targets() -> None:
    """llvmlite needs its targets registered before a triple can be looked up (idempotent)."""
    llvm.initialize_all_targets()


def check(text: str) -> list[IRError]:
    """All problems llvmlite finds in the text; empty when it parses and verifies."""
    try:
        parse(text)
    except InvalidIR as invalid:
        return invalid.errors
    return []


def llvm_diagnostic(message: str, text: str) -> IRError:
    """An LLVM message (`<stdin>:3:7: error: ...`, as llvmlite or `opt` print it) as a located error."""
    return _parse_error(message, text)


def _parse_error(message: str, text: str) -> IRError:
    lines = text.split("\n")
    message_lines = message.split("\n")  # not splitlines(): LLVM's quoted source may hold other breaks
    for index, raw in enumerate(message_lines):
        match = _LOCATION.search(raw)
        if match:
            line = max(int(match.group(1)) - 1, 0)
            if line >= len(lines):
                line = max(len(lines) - 1, 0)
            text = lines[line] if lines else ""
            quoted = message_lines[index + 1] if index + 1 < len(message_lines) else None
            start = _segment_start(text, quoted)
            # LLVM reports byte columns from the last line feed or carriage return; IRError counts
            # characters from the line feed.
            column = start + len(text[start:].encode()[: max(int(match.group(2)) - 1, 0)].decode(errors="ignore"))
            return IRError(line, column, match.group(3).strip(), _token_end(text, column))
    return IRError(0, 0, message.strip() or "invalid LLVM IR")


def _segment_start(line: str, quoted: str | None) -> int:
    """Where LLVM's column 1 is on a line that carriage returns split: the piece LLVM quoted."""
    if "\r" not in line:
        return 0
    starts, offset = [], 0
    for piece in line.split("\r"):
        starts.append((offset, piece))
        offset += len(piece) + 1
    matching = [start for start, piece in starts if quoted is not None and piece == quoted.rstrip("\r")]
    return matching[0] if len(matching) == 1 else 0


def _token_end(line: str, column: int) -> int:
    end = column
    while end < len(line) and not line[end].isspace() and line[end] not in ",()[]{}":
        end += 1
    return max(end, column + 1) if line else column


def _verifier_errors(message: str, text: str) -> list[IRError]:
    """The verifier prints a message followed by the offending instructions; locate the first of them."""
    lines = text.split("\n")
    stripped = [line.strip() for line in lines]
    body = [line for line in message.splitlines() if line.strip()]
    summary = body[0].strip() if body else "module does not verify"
    for quoted in body[1:]:
        needle = quoted.strip()
        if needle in stripped:
            line = stripped.index(needle)
            column = len(lines[line]) - len(lines[line].lstrip())
            return [IRError(line, column, summary, len(lines[line].rstrip()))]
        if needle.startswith(("define ", "declare ")) or needle.startswith("ptr @"):
            for index, candidate in enumerate(stripped):
                if candidate.startswith(needle.split("{")[0].strip()):
                    return [IRError(index, 0, summary, len(lines[index]))]
    return [IRError(0, 0, summary)]


def function_instruction_counts(module: llvm.ModuleRef) -> dict[str, int]:
    """Instructions of each defined function; debug intrinsics are not instructions."""
    counts: dict[str, int] = {}
    for function in module.functions:
        if function.is_declaration:
            continue
        total = 0
        for block in function.blocks:
            for instruction in block.instructions:
                if instruction.opcode == "call" and _is_debug_intrinsic(instruction):
                    continue
                total += 1
        counts[function.name] = total
    return counts


def count_instructions(text: str) -> int:
    """The size of a module: every instruction of every defined function, so outlining cannot hide code."""
    return sum(function_instruction_counts(parse(text, verify=False)).values())


def _is_debug_intrinsic(instruction: llvm.ValueRef) -> bool:
    operands = list(instruction.operands)
    return bool(operands) and operands[-1].name.startswith("llvm.dbg.")
