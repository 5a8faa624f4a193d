"""Hover (measured figures, pass list, opt and model) and navigation (definition, references, symbols,
folding)."""

from __future__ import annotations

import re

import pytest
import pytest_asyncio
from lsprotocol import types

from .conftest import EXAMPLE, OPT, wait_for_hints

pytestmark = pytest.mark.asyncio(loop_scope="module")

URI = "file:///virtual/navigation/example.ll"
TEXT = EXAMPLE.read_text()
LINES = TEXT.split("\n")


def position(line: int, needle: str, offset: int = 1) -> types.Position:
    """A position inside the first `needle` on `line` (ASCII lines: code points = code units)."""
    return types.Position(line=line, character=LINES[line].index(needle) + offset)


def line_of(prefix: str) -> int:
    return next(n for n, line in enumerate(LINES) if line.startswith(prefix))


def span_of(needle: str, line: int) -> types.Range:
    start = LINES[line].index(needle)
    return types.Range(start=types.Position(line=line, character=start), end=types.Position(line=line, character=start + len(needle)))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def opened(client):
    client.editor.open(URI, TEXT)
    hints = await wait_for_hints(client, URI, 7)
    yield {h.position.line: h for h in hints}
    client.editor.close(URI)


async def hover(client, pos: types.Position) -> types.Hover | None:
    return await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=URI), position=pos)
    )


async def test_hover_on_define_and_on_a_call(client, opened):
    define = line_of("define dso_local i32 @grade(")
    on_define = await hover(client, position(define, "@grade"))
    call = next(n for n, line in enumerate(LINES) if "call i32 @grade(" in line)
    on_call = await hover(client, position(call, "@grade"))
    assert on_define is not None and on_call is not None
    assert on_define.contents.value == on_call.contents.value
    assert on_call.range == span_of("@grade", call)
    body = on_define.contents.value
    assert on_define.contents.kind == types.MarkupKind.Markdown
    label = opened[define].label  # "18 instrs · -Oz 10 · best 8 (−20.0%)"
    original, oz, best = label.split(" instrs · -Oz ")[0], label.split("-Oz ")[1].split(" ")[0], label.split("best ")[1].split(" ")[0]
    assert f"| original | {original} |" in body
    assert f"| `-Oz` | {oz} |" in body
    assert f"| best | {best} (" in body
    assert "best pass list (source: " in body
    assert f"(`{OPT}`)" in body and "opt 22." in body
    assert "model: none" in body


async def test_hover_on_other_names_shows_their_definition(client, opened):
    line = line_of("define dso_local i32 @weighted_sum(")
    attribute = await hover(client, position(line, "#0"))
    assert attribute is not None and "attributes #0 = { noinline nounwind" in attribute.contents.value
    use = next(n for n, text in enumerate(LINES) if "@labels" in text and not text.startswith("@labels"))
    global_ = await hover(client, position(use, "@labels"))
    assert global_ is not None and "@labels = dso_local global [3 x ptr]" in global_.contents.value
    assert await hover(client, types.Position(line=0, character=2)) is None  # a comment


async def definition(client, pos):
    return await client.text_document_definition_async(
        types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=pos)
    )


async def references(client, pos, include_declaration=True):
    return await client.text_document_references_async(
        types.ReferenceParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=pos,
            context=types.ReferenceContext(include_declaration=include_declaration),
        )
    )


async def test_definition_and_references_of_globals(client, opened):
    call = next(n for n, line in enumerate(LINES) if "call i32 @weight(" in line)
    define = line_of("define internal i32 @weight(")
    assert [loc.range for loc in await definition(client, position(call, "@weight"))] == [span_of("@weight", define)]
    refs = await references(client, position(define, "@weight"))
    assert [loc.range.start.line for loc in refs] == sorted([call, define])
    refs = await references(client, position(define, "@weight"), include_declaration=False)
    assert [loc.range.start.line for loc in refs] == [call]
    table = line_of("@weights =")
    use = next(n for n, line in enumerate(LINES) if "@weights," in line)
    assert [loc.range for loc in await definition(client, position(use, "@weights"))] == [span_of("@weights", table)]


async def test_locals_are_scoped_to_their_function(client, opened):
    first = line_of("define dso_local i32 @weighted_sum(")
    use = next(n for n in range(first, len(LINES)) if LINES[n].startswith("  %8 = load i32, ptr %6"))
    definition_line = next(n for n in range(first, len(LINES)) if LINES[n].startswith("  %6 = alloca"))
    found = await definition(client, position(use, "%6"))
    assert [loc.range for loc in found] == [span_of("%6", definition_line)]
    end = next(n for n in range(first, len(LINES)) if LINES[n] == "}")
    refs = await references(client, position(use, "%6"))
    assert refs and all(first <= loc.range.start.line <= end for loc in refs)
    assert len(refs) == sum(len(re.findall(r"%6(?![0-9])", line.split(";")[0])) for line in LINES[first : end + 1])
    # A label: `br label %7` goes to the `7:` line of the same function.
    branch = next(n for n in range(first, end) if "br label %7" in LINES[n])
    label_line = next(n for n in range(first, end) if LINES[n].startswith("7:"))
    found = await definition(client, position(branch, "%7"))
    assert [(loc.range.start.line, loc.range.start.character) for loc in found] == [(label_line, 0)]
    # A parameter.
    param_use = next(n for n in range(first, end) if "store ptr %0" in LINES[n])
    found = await definition(client, position(param_use, "%0"))
    assert [loc.range for loc in found] == [span_of("%0", first)]


async def test_attribute_groups_and_metadata(client, opened):
    line = line_of("define dso_local i32 @grade(")
    found = await definition(client, position(line, "#0"))
    assert [loc.range.start.line for loc in found] == [line_of("attributes #0 =")]
    use = next(n for n, text in enumerate(LINES) if "!llvm.loop !6" in text)
    found = await definition(client, position(use, "!6"))
    assert [loc.range.start.line for loc in found] == [line_of("!6 =")]
    refs = await references(client, position(line_of("attributes #0 ="), "#0"), include_declaration=False)
    assert len(refs) == sum(1 for text in LINES if text.startswith("define") and ") #0 {" in text)


async def test_document_symbols(client, opened):
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=URI))
    )
    names = [s.name for s in symbols]
    functions = [s for s in symbols if s.kind == types.SymbolKind.Function and s.detail == "define"]
    assert [s.name for s in functions] == ["@weighted_sum", "@weight", "@grade", "@checksum", "@count_words", "@describe", "@max_of"]
    assert {"@strlen", "@printf", "@llvm.memcpy.p0.p0.i64", "@labels", "@weights", "@.str"} <= set(names)
    grade = functions[2]
    assert grade.range.start.line == line_of("define dso_local i32 @grade(")
    assert LINES[grade.range.end.line] == "}"
    assert grade.selection_range == span_of("@grade", grade.range.start.line)
    assert grade.children and all(child.kind == types.SymbolKind.Key for child in grade.children)


async def test_folding_ranges(client, opened):
    ranges = await client.text_document_folding_range_async(
        types.FoldingRangeParams(text_document=types.TextDocumentIdentifier(uri=URI))
    )
    functions = [(r.start_line, r.end_line) for r in ranges if LINES[r.start_line].startswith("define")]
    assert len(functions) == 7
    for start, end in functions:
        assert LINES[end] == "}"
        assert not any(line.startswith("define") for line in LINES[start + 1 : end + 1])
