"""Columns: the IR layer counts characters (code points); LSP counts units of the negotiated encoding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from ..server import PassPilotServer


def _units(char: str, encoding: str) -> int:
    code = ord(char)
    if encoding == types.PositionEncodingKind.Utf8:
        return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
    if encoding == types.PositionEncodingKind.Utf32:
        return 1
    return 2 if code > 0xFFFF else 1


class Columns:
    def __init__(self, encoding: str | None):
        self.encoding = str(encoding or types.PositionEncodingKind.Utf16)

    @classmethod
    def of(cls, ls: PassPilotServer) -> Columns:
        try:
            return cls(ls.workspace.position_encoding)
        except RuntimeError:
            return cls(None)

    def to_client(self, line: str, column: int) -> int:
        """Code-point column -> client units."""
        if self.encoding == types.PositionEncodingKind.Utf32 or line.isascii():
            return column
        return sum(_units(c, self.encoding) for c in line[:column])

    def from_client(self, line: str, units: int) -> int:
        """Client units -> code-point column (clamped to the line)."""
        if self.encoding == types.PositionEncodingKind.Utf32 or line.isascii():
            return min(units, len(line))
        seen = 0
        for index, char in enumerate(line):
            if seen >= units:
                return index
            seen += _units(char, self.encoding)
        return len(line)

    def position(self, lines: list[str] | tuple[str, ...], line: int, column: int) -> types.Position:
        text = lines[line] if 0 <= line < len(lines) else ""
        return types.Position(line=line, character=self.to_client(text, column))

    def range(self, lines, line: int, start: int, end: int, end_line: int | None = None) -> types.Range:
        end_line = line if end_line is None else end_line
        return types.Range(start=self.position(lines, line, start), end=self.position(lines, end_line, end))

    def line_end(self, lines, line: int) -> types.Position:
        text = lines[line] if 0 <= line < len(lines) else ""
        return self.position(lines, line, len(text.rstrip("\r")))
