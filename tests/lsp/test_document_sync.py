"""The server's copy of a document stays the client's, whatever characters it holds.

LSP ends lines at "\\n", "\\r\\n" and "\\r" only. Python's `str.splitlines` also splits at U+2028,
U+2029, U+0085, form feeds, U+001C-U+001E and vertical tabs: a server that counts lines that way applies
incremental edits lines off, and its next rewrite deletes what the user typed. LLVM, and the IR layer,
count lines at "\\n" only, so a lone "\\r" must be converted at the LSP boundary too.

The client side here (conftest.Editor) applies edits with its own, independent reading of LSP positions.
"""

from __future__ import annotations

import pytest
from lsprotocol import types

from .conftest import SMALL, diagnostics_for, lsp_position, plain, wait_for_hints, wait_until
from .test_edits import assert_only_function_changed, assert_verifies

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEXT = SMALL.read_text()
# Characters where `str.splitlines` splits and LSP does not, and an astral character (2 UTF-16 units).
ODD = "\u2028 \u2029 \u0085 \x0c \x1c \x1d \x1e \x0b 😀"
TYPED = "; typed by the user"


async def execute(client, command: str, argument: dict) -> dict:
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(command=command, arguments=[argument]))
    return plain(result)


def comment_with_odd_characters(text: str) -> str:
    return text.replace("; ModuleID = 'small.c'", f"; ModuleID = 'small.c' {ODD}", 1)


async def test_incremental_edits_after_line_separators_keep_the_users_text(client):
    """The report's scenario: odd characters above, the user types a line, then "Optimize function"."""
    uri = "file:///virtual/sync/separators.ll"
    text = comment_with_odd_characters(TEXT)
    client.editor.open(uri, text)
    await wait_for_hints(client, uri, 4)
    # The user types a comment line above @clamp and changes a comment inside @sum_squares.
    at = text.index("; Function Attrs: noinline nounwind uwtable\ndefine dso_local i32 @clamp")
    client.editor.type(uri, at, at, TYPED + "\n")
    typed = client.editor.text(uri)
    label = typed.index("7:                                                ; preds")
    client.editor.type(uri, label + 2, label + 2, f" ; loop {ODD} header")
    before = client.editor.text(uri)
    assert before.count(TYPED) == 1

    result = await execute(client, "passpilot.optimizeFunction", {"uri": uri, "function": "clamp"})
    assert result["applied"] is True, result
    after = client.editor.text(uri)
    assert after.count(TYPED) == 1 and after.count(f"; loop {ODD} header") == 1
    assert after.split(TYPED)[0] == before.split(TYPED)[0]
    assert_verifies(after)
    assert_only_function_changed(before, after, "clamp")
    client.editor.close(uri)


def function_text(text: str, name: str) -> str:
    """From the `; Function Attrs:` line above the function to its closing brace (what a preview shows)."""
    header = text.index(f"@{name}(")
    start = text.rindex("; Function Attrs:", 0, header)
    return text[start : text.index("\n}", header) + 2]


async def test_server_text_follows_many_edits_among_odd_line_breaks(client):
    """Edits before and after every kind of line break inside a function; previewing the function
    shows the server's text of it, which must be the client's."""
    uri = "file:///virtual/sync/many.ll"
    body = "  %3 = alloca ptr, align 8\n  %4 = alloca i32, align 4\n  %5 = alloca i32, align 4\n"
    odd_body = f"  %3 = alloca ptr, align 8\r\n  ; {ODD}\r\n  %4 = alloca i32, align 4\r  %5 = alloca i32, align 4\n"
    text = TEXT.replace(body, odd_body, 1)
    client.editor.open(uri, text)
    await wait_for_hints(client, uri, 4)
    start = text.index("@sum_squares(")
    edits = 0
    for needle in [*ODD.split(" "), "\r\n", "\r  %5"]:
        current = client.editor.text(uri)
        at = current.index(needle, start)
        inside_comment = needle in ODD
        client.editor.type(uri, at, at, "x" if inside_comment else " ")  # just before it
        current = client.editor.text(uri)
        at = current.index(needle, start) + len(needle)
        client.editor.type(uri, at, at, "z" if inside_comment else " ")  # just after it
        edits += 2
    current = client.editor.text(uri)
    result = await execute(client, "passpilot.previewFunction", {"uri": uri, "function": "sum_squares"})
    assert "reason" not in result, result
    assert result["original_text"] == function_text(current, "sum_squares")
    assert edits == 22 and client.editor.version(uri) == 23
    client.editor.close(uri)


async def test_lone_carriage_returns_place_diagnostics_on_the_clients_line(client):
    """LLVM counts lines at "\\n"; the client also at "\\r": a diagnostic must land where the client
    shows the bad token."""
    uri = "file:///virtual/sync/lone-cr.ll"
    text = TEXT.replace('source_filename = "small.c"\n', 'source_filename = "small.c"\r\r', 1)
    text = text.replace("store i32 %0, ptr %5, align 4", "store i32 %99, ptr %5, align 4", 1)
    client.editor.open(uri, text)
    diagnostics = await diagnostics_for(client, uri, version=1)
    assert len(diagnostics) == 1 and "'%99'" in diagnostics[0].message
    at = text.index("%99")
    encoding = client.editor.encoding
    assert diagnostics[0].range == types.Range(
        start=lsp_position(text, at, encoding), end=lsp_position(text, at + 3, encoding)
    )
    client.editor.close(uri)


async def test_lone_carriage_returns_place_hints_symbols_and_folds_on_the_clients_lines(client):
    uri = "file:///virtual/sync/lone-cr-symbols.ll"
    text = TEXT.replace('source_filename = "small.c"\n', 'source_filename = "small.c"\r\r', 1)
    client.editor.open(uri, text)
    hints = await wait_for_hints(client, uri, 4)
    encoding = client.editor.encoding
    ends = {}
    for name in ("greeting", "sum_squares", "square", "clamp"):
        header = text.index(f"@{name}(")
        ends[name] = lsp_position(text, text.index("{", header) + 1, encoding)
    assert sorted((h.position.line, h.position.character) for h in hints) == sorted(
        (p.line, p.character) for p in ends.values()
    )

    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    ranges = {s.name: s.range if isinstance(s, types.DocumentSymbol) else s.location.range for s in symbols}
    clamp = ranges["@clamp"]
    assert clamp.start == lsp_position(text, text.index("define dso_local i32 @clamp"), encoding)
    closing = text.index("\n}", text.index("@clamp(")) + 2
    assert clamp.end == lsp_position(text, closing, encoding)
    for symbol in symbols:
        if isinstance(symbol, types.DocumentSymbol) and symbol.name == "@clamp":
            assert symbol.selection_range.start == lsp_position(text, text.index("@clamp("), encoding)

    folds = await client.text_document_folding_range_async(
        types.FoldingRangeParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert (clamp.start.line, clamp.end.line) in {(f.start_line, f.end_line) for f in folds}

    # Go to definition from the call of @square inside @sum_squares.
    call = text.index("call i32 @square(") + len("call i32 @")
    locations = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=lsp_position(text, call, encoding)
        )
    )
    defined = text.index("@square(i32 noundef %0)")
    assert [loc.range.start for loc in locations] == [lsp_position(text, defined, encoding)]

    # Hover on that call: the token is found, and its range given, on the client's lines.
    hovered = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=lsp_position(text, call, encoding))
    )
    assert hovered is not None and "@square" in hovered.contents.value
    assert hovered.range == types.Range(
        start=lsp_position(text, call - 1, encoding), end=lsp_position(text, call + len("square"), encoding)
    )
    client.editor.close(uri)


async def test_crlf_document_rewrite_keeps_the_typed_line(client):
    uri = "file:///virtual/sync/crlf.ll"
    text = TEXT.replace("\n", "\r\n")
    client.editor.open(uri, text)
    await wait_for_hints(client, uri, 4)
    at = text.index("define internal i32 @square")
    client.editor.type(uri, at, at, TYPED + "\r\n")
    before = client.editor.text(uri)
    result = await execute(client, "passpilot.optimizeFunction", {"uri": uri, "function": "sum_squares"})
    assert result["applied"] is True, result
    after = await wait_until(lambda: client.editor.text(uri) != before and client.editor.text(uri), what="the edit")
    assert after.count(TYPED + "\r\n") == 1
    assert after.split("@sum_squares")[0] == before.split("@sum_squares")[0]
    assert before[before.index(TYPED) : before.index("attributes #0")] in after
    assert_verifies(after)
    client.editor.close(uri)
