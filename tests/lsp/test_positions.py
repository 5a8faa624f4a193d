"""The server's document model and its one conversion between the IR layer's positions and the
client's, checked against the client's side (conftest: written from the encodings' codecs) on random
texts full of line breaks of every kind, in UTF-8, UTF-16 and UTF-32."""

from __future__ import annotations

import random

import pytest
from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from lsp_server.session.documents import ClientTextDocument
from lsp_server.session.edits import Replacement, apply_replacements
from lsp_server.session.positions import Edit, Positions

from .conftest import apply_text_edits, lsp_offset, lsp_position

ENCODINGS = ["utf-8", "utf-16", "utf-32"]
PIECES = ["define i32 @f() {", "  ret i32 0", "}", "; é😀", "\n", "\n", "\r\n", "\r", "\u2028", "\u2029", "\u0085",
          "\x0c", "\x0b", "\x1c", "\x1d", "\x1e", " ", "x"]


def random_text(rng: random.Random, pieces: int) -> str:
    return "".join(rng.choice(PIECES) for _ in range(pieces))


def boundary(rng: random.Random, text: str) -> int:
    """A random offset that LSP can address (not between the CR and LF of a line break)."""
    offset = rng.randint(0, len(text))
    return offset - 1 if 0 < offset < len(text) and text[offset - 1 : offset + 1] == "\r\n" else offset


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_incremental_changes_apply_where_the_client_means(encoding):
    rng = random.Random(encoding)
    for _ in range(200):
        text = random_text(rng, 30)
        document = ClientTextDocument("file:///t.ll", text, version=1, position_codec=PositionCodec(encoding=encoding))
        for _ in range(10):
            start = boundary(rng, text)
            end = max(start, boundary(rng, text))
            new = random_text(rng, rng.randint(0, 3))
            change = types.TextDocumentContentChangePartial(
                range=types.Range(start=lsp_position(text, start, encoding), end=lsp_position(text, end, encoding)), text=new
            )
            document.apply_change(change)
            text = text[:start] + new + text[end:]
            assert document.source == text


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_positions_of_the_ir_layer_convert_both_ways(encoding):
    rng = random.Random(encoding)
    for _ in range(300):
        text = random_text(rng, 40)
        positions = Positions(text, encoding)
        lines = text.split("\n")  # the IR layer's lines, as LLVM counts them
        line = rng.randrange(len(lines))
        column = rng.randint(0, len(lines[line]))
        offset = sum(len(line) + 1 for line in lines[:line]) + column
        if 0 < offset < len(text) and text[offset - 1 : offset + 1] == "\r\n":
            continue  # LSP has no position there
        client = positions.position(line, column)
        assert client == lsp_position(text, offset, encoding)
        assert lsp_offset(text, client, encoding) == offset
        assert positions.to_ir(client) == (line, column)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_text_edits_reproduce_the_planned_text_exactly(encoding):
    """Replacements planned on the IR layer's lines may start or end between a CR and its LF: the
    edits sent grow to whole line breaks, and the client ends up with exactly the planned text."""
    rng = random.Random(encoding)
    for _ in range(300):
        text = random_text(rng, 40)
        lines = text.split("\n")
        spots = sorted(
            (line, rng.randint(0, len(lines[line]))) for line in (rng.randrange(len(lines)) for _ in range(2 * rng.randint(1, 3)))
        )
        replacements = tuple(
            Replacement(a[0], a[1], b[0], b[1], random_text(rng, rng.randint(0, 2))) for a, b in zip(spots[::2], spots[1::2])
        )
        planned = apply_replacements(text, replacements)
        positions = Positions(text, encoding)
        edits = positions.text_edits(
            [Edit(positions.offset(r.start_line, r.start_col), positions.offset(r.end_line, r.end_col), r.text) for r in replacements]
        )
        client, changes = apply_text_edits(text, edits, encoding)
        assert client == planned, (text, replacements, edits)
        document = ClientTextDocument("file:///t.ll", text, version=1, position_codec=PositionCodec(encoding=encoding))
        for change in changes:
            document.apply_change(change)
        assert document.source == planned
