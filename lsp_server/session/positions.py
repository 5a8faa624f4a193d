"""Positions at the LSP boundary: the one conversion between the IR layer's positions and the client's.

The IR layer counts lines as LLVM does, ending them at "\\n" only (a "\\r" stays in the line), and
columns in characters (code points). LSP ends lines at "\\n", "\\r\\n" and "\\r", and nowhere else: not at
U+2028, U+2029, U+0085, a form feed or the other characters where Python's `str.splitlines` splits. It
counts columns in units of the negotiated position encoding (UTF-16 unless the client chose otherwise).
The two agree on lines unless the text holds a lone "\\r"; every feature converts through `Positions`,
and the server's documents apply the client's edits with `client_offset`.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from ..server import PassPilotServer

LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_KEPT = re.compile(r"(\r\n|\r|\n)")  # splits into lines and the breaks between them
POSITIONS_KEPT = 4  # texts whose `Positions` the server keeps (see `Positions.of`)
UTF8, UTF16, UTF32 = (e.value for e in (types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf16, types.PositionEncodingKind.Utf32))


def encoding_name(encoding: types.PositionEncodingKind | str | None) -> str:
    """`utf-8`, `utf-16` or `utf-32` (pygls hands over the enum or its value); UTF-16 when unknown."""
    name = getattr(encoding, "value", encoding)
    return name if name in (UTF8, UTF32) else UTF16


def encoding_of(ls: PassPilotServer) -> str:
    """The position encoding negotiated with the client (UTF-16 before `initialize`)."""
    try:
        return encoding_name(ls.workspace.position_encoding)
    except RuntimeError:
        return UTF16


def _char_units(char: str, encoding: str) -> int:
    code = ord(char)
    if encoding == UTF8:
        return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
    if encoding == UTF32:
        return 1
    return 2 if code > 0xFFFF else 1


def units(text: str, encoding: str) -> int:
    """The length of `text` in the encoding's code units."""
    if encoding == UTF32 or text.isascii():
        return len(text)
    if encoding == UTF16:
        return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)
    return len(text.encode("utf-8", "surrogatepass"))


def column_of_units(line: str, count: int, encoding: str) -> int:
    """Code units -> characters, clamped to the line (a count inside a character moves past it)."""
    if count <= 0:
        return 0
    if encoding == UTF32 or line.isascii():
        return min(count, len(line))
    seen = 0
    for index, char in enumerate(line):
        if seen >= count:
            return index
        seen += _char_units(char, encoding)
    return len(line)


class ClientLines:
    """A text as an LSP client sees it: its lines, without their line breaks, and where each starts."""

    def __init__(self, text: str):
        self.text = text
        parts = _LINE_BREAK_KEPT.split(text)
        self.contents: list[str] = parts[0::2]
        lengths = (len(c) + len(b) for c, b in zip(self.contents, [*parts[1::2], ""]))
        self.starts: list[int] = [0, *itertools.accumulate(lengths)][:-1]

    def __len__(self) -> int:
        return len(self.contents)

    def offset(self, position: types.Position, encoding: str) -> int:
        """The character offset of a client position. A column past the line's end means its end (as
        LSP says); a line past the last one means the end of the text."""
        if position.line < 0:
            return 0
        if position.line >= len(self.contents):
            return len(self.text)
        line = self.contents[position.line]
        return self.starts[position.line] + column_of_units(line, position.character, encoding)

    def position(self, offset: int, encoding: str) -> types.Position:
        """The client position of a character offset; an offset inside a "\\r\\n" is its line's end."""
        offset = min(max(offset, 0), len(self.text))
        line = bisect.bisect_right(self.starts, offset) - 1
        column = min(offset - self.starts[line], len(self.contents[line]))
        return types.Position(line=line, character=units(self.contents[line][:column], encoding))


def client_offset(text: str, position: types.Position, encoding: str) -> int:
    """`ClientLines(text).offset(position, encoding)`, without indexing every line of the text: for
    applying a client's change, which a large document receives at every keystroke."""
    if position.line < 0:
        return 0
    lone_cr = "\r" in text and text.count("\r") != text.count("\r\n")
    # Without a lone CR, the line breaks are the LFs (a CR before one belongs to it): str.split is fastest.
    if position.line == 0:
        parts = [text]
    elif lone_cr:
        parts = LINE_BREAK.split(text, maxsplit=position.line)
    else:
        parts = text.split("\n", position.line)
    if len(parts) <= position.line:
        return len(text)
    rest = parts[-1]
    found = LINE_BREAK.search(rest)
    line = rest[: found.start()] if found else rest
    return len(text) - len(rest) + column_of_units(line, position.character, encoding)


def client_lines_with_breaks(text: str) -> tuple[str, ...]:
    """The lines of `text`, each with its line break, split where LSP splits (for pygls' `lines`)."""
    parts = _LINE_BREAK_KEPT.split(text)
    lines = [content + brk for content, brk in zip(parts[0::2], [*parts[1::2], ""])]
    if lines and lines[-1] == "":
        lines.pop()
    return tuple(lines)


@dataclass(frozen=True)
class Edit:
    """Replace the characters `start:end` of a text with `text`."""

    start: int
    end: int
    text: str


class Positions:
    """Converts the IR layer's (line, column) in one text to client positions and back."""

    def __init__(self, text: str, encoding: str, lines: tuple[str, ...] | list[str] | None = None):
        self.text = text
        self.encoding = encoding_name(encoding)
        # Without a "\r" the IR layer's lines are the client's lines.
        self._same_lines = "\r" not in text
        if lines is not None:
            self.__dict__["lines"] = lines

    @classmethod
    def of(cls, ls: PassPilotServer, text: str, lines: tuple[str, ...] | list[str] | None = None) -> Positions:
        """For a text of the server's documents; pass the IR layer's `lines` of it when at hand. The
        server keeps the last few (a large text with CR LF line ends takes a while to index)."""
        encoding = encoding_of(ls)
        cache = ls.positions_cache
        found = cache.get((encoding, text))
        if found is None:
            found = cls(text, encoding, lines)
            while len(cache) >= POSITIONS_KEPT:
                cache.pop(next(iter(cache)))
            cache[(encoding, text)] = found
        return found

    @cached_property
    def lines(self) -> tuple[str, ...] | list[str]:
        """The IR layer's lines of the text."""
        return self.text.split("\n")

    @cached_property
    def _line_starts(self) -> list[int]:
        return [0, *itertools.accumulate(len(line) + 1 for line in self.lines)][:-1]

    @cached_property
    def client(self) -> ClientLines:
        return ClientLines(self.text)

    @property
    def client_line_count(self) -> int:
        return len(self.lines) if self._same_lines else len(self.client)

    # IR layer -> client

    def offset(self, line: int, column: int) -> int:
        """The character offset of an IR (line, column), clamped to the text and the line."""
        if line < 0:
            return 0
        if line >= len(self.lines):
            return len(self.text)
        return self._line_starts[line] + min(max(column, 0), len(self.lines[line]))

    def position(self, line: int, column: int) -> types.Position:
        if self._same_lines:
            if line >= len(self.lines):
                return self.client.position(len(self.text), self.encoding)
            line = max(line, 0)
            text = self.lines[line]
            return types.Position(line=line, character=units(text[: min(max(column, 0), len(text))], self.encoding))
        return self.client.position(self.offset(line, column), self.encoding)

    def offset_position(self, offset: int) -> types.Position:
        return self.client.position(offset, self.encoding)

    def range(self, line: int, start: int, end: int, end_line: int | None = None) -> types.Range:
        """From (line, start) to (end_line or line, end)."""
        return types.Range(start=self.position(line, start), end=self.position(line if end_line is None else end_line, end))

    def line_end(self, line: int) -> types.Position:
        """The end of an IR line's text, before its "\\r\\n" (or before the last "\\r" of its text)."""
        text = self.lines[line] if 0 <= line < len(self.lines) else ""
        return self.position(line, len(text.rstrip("\r")))

    def line_start(self, line: int) -> types.Position:
        return self.position(line, 0)

    # Client -> IR layer

    def to_ir(self, position: types.Position) -> tuple[int, int]:
        """The IR (line, column) of a client position (clamped to the text)."""
        if self._same_lines:
            if position.line >= len(self.lines):
                last = len(self.lines) - 1
                return last, len(self.lines[last])
            line = max(position.line, 0)
            return line, column_of_units(self.lines[line], position.character, self.encoding)
        offset = self.client.offset(position, self.encoding)
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line, offset - self._line_starts[line]

    def ir_line(self, client_line: int) -> int:
        """The IR line that holds the start of a client line."""
        return self.to_ir(types.Position(line=client_line, character=0))[0]

    def ir_lines(self, client_range: types.Range) -> tuple[int, int]:
        """The first and last IR lines that a client range touches."""
        return self.ir_line(client_range.start.line), self.to_ir(client_range.end)[0]

    # Edits

    def text_edits(self, edits: list[Edit]) -> list[types.TextEdit]:
        """Client text edits that turn this text into what `edits` make of it.

        LSP cannot address a place between the "\\r" and the "\\n" of a line break: an edit that starts
        or ends there grows to take in the whole break, and its text takes in the part it covered, so that
        the client's result is exactly ours. Edits that then overlap are merged (LSP forbids overlaps).
        """
        ordered = sorted(edits, key=lambda e: e.start)  # stable: inserts at one place keep their order
        merged: list[tuple[Edit, Edit]] = []  # (as asked, grown to whole line breaks)
        for edit in ordered:
            grown = self._whole_breaks(edit)
            if merged and grown.start < merged[-1][1].end:
                previous, _ = merged.pop()
                between = self.text[previous.end : edit.start]
                edit = Edit(previous.start, max(previous.end, edit.end), previous.text + between + edit.text)
                grown = self._whole_breaks(edit)
            merged.append((edit, grown))
        return [
            types.TextEdit(
                range=types.Range(start=self.offset_position(grown.start), end=self.offset_position(grown.end)),
                new_text=grown.text,
            )
            for _, grown in merged
        ]

    def _whole_breaks(self, edit: Edit) -> Edit:
        text = self.text
        start, end, new = edit.start, edit.end, edit.text
        if 0 < start < len(text) and text[start - 1] == "\r" and text[start] == "\n":
            start, new = start - 1, "\r" + new
        if 0 < end < len(text) and text[end - 1] == "\r" and text[end] == "\n":
            end, new = end + 1, new + "\n"
        return edit if (start, end, new) == (edit.start, edit.end, edit.text) else Edit(start, end, new)

