"""Document highlights and rename of local values and labels; every rename's result is parsed and
verified with llvmlite and `opt -passes=verify`, and its functions count as many instructions as before."""

from __future__ import annotations

import re

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_server.compiler import find_opt, verify
from lsp_server.engine import standalone_functions
from lsp_server.ir import check, count_instructions

from .conftest import EXAMPLE, OPT

pytestmark = pytest.mark.asyncio(loop_scope="module")

BLOCKS = """\
@table = global [2 x ptr] [ptr blockaddress(@jump, %one), ptr blockaddress(@jump, %2)]

define i32 @jump(ptr %target) {
  indirectbr ptr %target, [label %one, label %2]

one:
  ret i32 1

2:
  ret i32 2
}
"""


def where(text: str, needle: str, line_hint: str | None = None, nth: int = 0) -> types.Position:
    """The position of the `nth` occurrence of `needle` (on the first line that holds `line_hint`)."""
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if line_hint is not None and line_hint not in line:
            continue
        found = [m.start() for m in re.finditer(re.escape(needle), line)]
        if len(found) > nth:
            return types.Position(line=number, character=found[nth])
        if line_hint is not None:
            break
    raise AssertionError(f"{needle!r} not found")


async def renamed(client, uri: str, position: types.Position, new_name: str) -> str:
    prepared = await client.text_document_prepare_rename_async(
        types.PrepareRenameParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position)
    )
    assert prepared is not None
    edit = await client.text_document_rename_async(
        types.RenameParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position, new_name=new_name)
    )
    assert edit is not None
    assert client.editor.apply_workspace_edit(edit)
    return client.editor.text(uri)


def assert_valid(text: str) -> None:
    assert check(text) == []
    run = verify(find_opt(OPT), text)
    assert run.ok, run.error


def counts(text: str) -> dict[str, int]:
    return {f.name: count_instructions(f.text) for f in standalone_functions(text)[1]}


async def test_highlights_are_the_definition_and_the_uses(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/rename/highlight.ll"
    client.editor.open(uri, text)
    position = where(text, "%5", "%5 = alloca")
    highlights = await client.text_document_document_highlight_async(
        types.DocumentHighlightParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position)
    )
    writes = [h for h in highlights if h.kind == types.DocumentHighlightKind.Write]
    reads = [h for h in highlights if h.kind == types.DocumentHighlightKind.Read]
    assert [w.range.start for w in writes] == [position]
    body = text.split("\n")[position.line : position.line + 40]
    assert len(reads) == sum(len(re.findall(r"%5\b", line)) for line in body[: body.index("}")]) - 1
    for h in highlights:
        line = text.split("\n")[h.range.start.line]
        assert line[h.range.start.character : h.range.end.character] == "%5"
    # A label: its definition has no `%`.
    label = await client.text_document_document_highlight_async(
        types.DocumentHighlightParams(text_document=types.TextDocumentIdentifier(uri=uri), position=where(text, "%23", "br i1 %10"))
    )
    assert {h.kind for h in label} == {types.DocumentHighlightKind.Read, types.DocumentHighlightKind.Write}
    client.editor.close(uri)


async def test_renaming_a_numbered_value_renumbers_the_rest_and_still_verifies(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/rename/numbered.ll"
    client.editor.open(uri, text)
    before = counts(text)
    new = await renamed(client, uri, where(text, "%5", "%5 = alloca"), "sum")
    assert_valid(new)
    assert counts(new) == before
    function = new.split("define dso_local i32 @weighted_sum")[1].split("\n}\n")[0]
    assert "%sum = alloca i32" in function and "store i32 %19, ptr %sum" not in function
    assert "%5 = alloca i32" in function  # what was %6 is %5 now
    assert "\n6:" in function and "\n7:" not in function  # and the label 7 is 6
    # Other functions keep their numbers.
    others = lambda t: t.split("define internal i32 @weight")[1]  # noqa: E731
    assert others(new) == others(text)
    client.editor.close(uri)


async def test_renaming_parameters_and_labels(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/rename/labels.ll"
    client.editor.open(uri, text)
    before = counts(text)
    new = await renamed(client, uri, where(text, "%0", "@grade(i32 noundef %0)"), "score")
    assert_valid(new)
    assert "@grade(i32 noundef %score)" in new
    new = await renamed(client, uri, where(new, "%23", "br i1 %10"), "%exit")
    assert_valid(new)
    assert "\nexit:" in new and "label %exit" in new
    assert counts(new) == before
    client.editor.close(uri)


async def test_labels_named_by_blockaddress_are_renamed_there_too(client):
    uri = "file:///virtual/rename/blocks.ll"
    client.editor.open(uri, BLOCKS)
    new = await renamed(client, uri, where(BLOCKS, "one", "one:"), "first")
    assert_valid(new)
    assert "blockaddress(@jump, %first)" in new and "label %first" in new
    new = await renamed(client, uri, where(new, "2", "2:"), "second")
    assert_valid(new)
    assert "blockaddress(@jump, %second)" in new and "\nsecond:" in new
    client.editor.close(uri)


@pytest.mark.parametrize(
    ("needle", "hint", "message"),
    [
        ("@weight", "call i32 @weight", "@globals are visible to other modules"),
        ("!6", "!llvm.loop !6", "metadata"),
        ("#0", "@grade(", "attribute groups"),
    ],
)
async def test_globals_and_metadata_are_refused_with_the_reason(client, needle, hint, message):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/rename/refused.ll"
    client.editor.open(uri, text)
    position = where(text, needle, hint)
    with pytest.raises(JsonRpcException, match=message) as raised:
        await client.text_document_prepare_rename_async(
            types.PrepareRenameParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position)
        )
    assert "renames only local values" in str(raised.value)
    with pytest.raises(JsonRpcException, match="renames only local values"):
        await client.text_document_rename_async(
            types.RenameParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position, new_name="x")
        )
    client.editor.close(uri)


async def test_bad_and_taken_names_are_refused(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/rename/names.ll"
    client.editor.open(uri, text)
    position = where(text, "%5", "%5 = alloca")
    for name, message in (("%6", "not a name"), ("1abc", "not a name"), ("a b", "not a name"), ("%3", "not a name")):
        with pytest.raises(JsonRpcException, match=message):
            await client.text_document_rename_async(
                types.RenameParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position, new_name=name)
            )
    await renamed(client, uri, position, "acc")
    position = where(client.editor.text(uri), "%3", "%3 = alloca ptr")
    with pytest.raises(JsonRpcException, match="already defined"):
        await client.text_document_rename_async(
            types.RenameParams(text_document=types.TextDocumentIdentifier(uri=uri), position=position, new_name="acc")
        )
    client.editor.close(uri)
