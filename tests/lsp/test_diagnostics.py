"""Diagnostics: exact ranges in the negotiated encoding, and hints that survive a broken document."""

from __future__ import annotations

import pytest
from lsprotocol import types

from .conftest import SMALL, diagnostics_for, wait_for_hints

pytestmark = pytest.mark.asyncio(loop_scope="module")

BAD_LINE = '@bad = global [6 x i8] c"é😀", align 1 zork'


def units(text: str, encoding: str) -> int:
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text.encode("utf-16-le")) // 2


async def test_parse_error_range_counts_code_units_of_the_client(client):
    lines = SMALL.read_text().split("\n")
    at = next(n for n, line in enumerate(lines) if line.startswith("target triple")) + 1
    text = "\n".join(lines[:at] + [BAD_LINE] + lines[at:])
    uri = "file:///virtual/diagnostics/non-ascii.ll"
    client.editor.open(uri, text)
    diagnostics = await diagnostics_for(client, uri, version=1)
    assert len(diagnostics) == 1
    diagnostic = diagnostics[0]
    encoding = client.editor.encoding
    column = BAD_LINE.index("zork")
    assert diagnostic.range == types.Range(
        start=types.Position(line=at, character=units(BAD_LINE[:column], encoding)),
        end=types.Position(line=at, character=units(BAD_LINE[: column + 4], encoding)),
    )
    # The astral character counts 2 in UTF-16, 4 in UTF-8: the column is not the code-point index.
    assert diagnostic.range.start.character != column
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert "expected top-level entity" in diagnostic.message
    client.editor.close(uri)


async def test_broken_function_keeps_hints_and_recovers(client):
    text = SMALL.read_text()
    uri = "file:///virtual/diagnostics/broken.ll"
    client.editor.open(uri, text)
    assert await diagnostics_for(client, uri, version=1) == []
    hints = await wait_for_hints(client, uri, 4)

    broken = text.replace("store i32 %0, ptr %5, align 4", "store i32 %99, ptr %5, align 4", 1)
    client.editor.replace_all(uri, broken)
    diagnostics = await diagnostics_for(client, uri, version=2)
    line = broken.split("\n").index("  store i32 %99, ptr %5, align 4")
    assert [(d.range, d.message) for d in diagnostics] == [
        (
            types.Range(start=types.Position(line=line, character=12), end=types.Position(line=line, character=15)),
            "use of undefined value '%99'",
        )
    ]
    # The last good function index keeps every hint in place while the text is broken.
    broken_hints = await wait_for_hints(client, uri, 4, timeout=5)
    assert [h.label.removesuffix(" (stale)") for h in broken_hints] == [h.label for h in hints]
    assert sum(h.label.endswith(" (stale)") for h in broken_hints) == 1  # only the function being edited
    assert [h.position.line for h in broken_hints] == [h.position.line for h in hints]

    client.editor.replace_all(uri, text)
    assert await diagnostics_for(client, uri, version=3) == []
    client.editor.close(uri)
