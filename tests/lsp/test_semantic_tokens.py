"""Semantic tokens: definitions apart from uses, every kind of name, keywords, and lit directives,
decoded the way a client decodes them (in its position encoding)."""

from __future__ import annotations

import pytest
import pytest_lsp
from pytest_lsp import LanguageClient
from lsprotocol import types

from .conftest import EXAMPLE, PROFILES, SERVER, lsp_offset, options, start

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODULE = """\
; RUN: opt -passes=sroa -S %s | FileCheck %s --check-prefixes=CHECK,OZ
; CHECK-LABEL: @pick(
; OZ-NEXT: ret
; NOTE: an ordinary comment
$grp = comdat any
%struct.pair = type { i32, i32 }
@table = global ptr blockaddress(@pick, %done)
@other = global i32 0, comdat($grp)

; Function Attrs: nounwind
define i32 @pick(i32 %x, ptr %p) #0 {
entry:
  %"é" = add i32 %x, 1
  %sum = add i32 %"é", %x
  %q = getelementptr %struct.pair, ptr %p, i32 0, i32 1, !tag !0
  br label %done

done:
  %r = call i32 @llvm.abs.i32(i32 %sum, i1 false)
  ret i32 %r
}

declare i32 @llvm.abs.i32(i32, i1)

attributes #0 = { nounwind }
!0 = !{}
"""


async def tokens(client, uri: str, client_range: types.Range | None = None):
    """(text, type, modifiers, line) of every token, read back from the document with the client's encoding."""
    legend = client.legend
    if client_range is None:
        result = await client.text_document_semantic_tokens_full_async(
            types.SemanticTokensParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
    else:
        result = await client.text_document_semantic_tokens_range_async(
            types.SemanticTokensRangeParams(text_document=types.TextDocumentIdentifier(uri=uri), range=client_range)
        )
    text = client.editor.text(uri)
    decoded = []
    line = character = 0
    data = result.data
    assert len(data) % 5 == 0
    for index in range(0, len(data), 5):
        delta_line, delta_start, length, kind, modifiers = data[index : index + 5]
        assert delta_line >= 0 and (delta_line > 0 or delta_start >= 0 or index == 0)
        line += delta_line
        character = character + delta_start if delta_line == 0 else delta_start
        start = lsp_offset(text, types.Position(line=line, character=character), client.editor.encoding)
        end = lsp_offset(text, types.Position(line=line, character=character + length), client.editor.encoding)
        assert "\n" not in text[start:end]
        names = {m for bit, m in enumerate(legend.token_modifiers) if modifiers & (1 << bit)}
        decoded.append((text[start:end], legend.token_types[kind], names, line))
    return decoded


@pytest_lsp.fixture(config=SERVER, params=PROFILES, scope="module")
async def legend_client(lsp_client: LanguageClient, request, cache_dir):
    """A server of this module's own, whose advertised legend the decoding uses."""
    result = await start(lsp_client, request.param, options(cache_dir))
    provider = result.capabilities.semantic_tokens_provider
    assert provider is not None and provider.full and provider.range
    lsp_client.legend = provider.legend
    yield
    await lsp_client.shutdown_session()


def find(decoded, text: str, line: int | None = None):
    matches = [t for t in decoded if t[0] == text and (line is None or t[3] == line)]
    assert matches, f"no token {text!r} (line {line})"
    return matches


async def test_names_definitions_and_directives(legend_client):
    client = legend_client
    uri = "file:///virtual/tokens/module.ll"
    client.editor.open(uri, MODULE)
    decoded = await tokens(client, uri)
    lines = MODULE.split("\n")
    at = {n: l for n, l in enumerate(lines)}
    define = next(n for n, l in at.items() if l.startswith("define"))

    # lit directives, including prefixes the RUN line declares; an ordinary comment is left alone.
    for n in range(3):
        assert (lines[n], "macro", set(), n) in decoded
    assert not [t for t in decoded if t[3] == 3]

    assert find(decoded, "$grp", 4)[0][1:3] == ("namespace", {"declaration", "definition"})
    assert find(decoded, "$grp", 7)[0][1:3] == ("namespace", set())
    assert find(decoded, "%struct.pair", 5)[0][1:3] == ("type", {"declaration", "definition"})
    assert find(decoded, "@table", 6)[0][1:3] == ("variable", {"declaration", "definition", "static"})
    assert find(decoded, "@pick", define)[0][1:3] == ("function", {"declaration", "definition", "static"})
    assert find(decoded, "@pick", 6)[0][1:3] == ("function", {"static"})
    assert find(decoded, "%x", define)[0][1:3] == ("parameter", {"declaration", "definition"})
    assert all(t[1:3] == ("parameter", set()) for t in find(decoded, "%x") if t[3] != define)
    assert find(decoded, "entry")[0][1:3] == ("label", {"declaration", "definition"})
    assert find(decoded, "done", define + 7)[0][1:3] == ("label", {"declaration", "definition"})
    assert find(decoded, "%done", define + 5)[0][1:3] == ("label", set())
    assert find(decoded, '%"é"', define + 2)[0][1:3] == ("variable", {"declaration", "definition"})
    assert find(decoded, '%"é"', define + 3)[0][1:3] == ("variable", set())
    # After a non-ASCII name the columns differ between UTF-8 and UTF-16: the token must still be `add`.
    assert find(decoded, "add", define + 3)[0][1] == "keyword"
    assert find(decoded, "%struct.pair", define + 4)[0][1:3] == ("type", set())
    assert find(decoded, "!0", define + 4)[0][1] == "property"
    assert find(decoded, "#0", define)[0][1:3] == ("decorator", set())
    assert find(decoded, "#0", define + 14)[0][1:3] == ("decorator", {"declaration", "definition"})
    declared = [t for t in find(decoded, "@llvm.abs.i32") if t[3] == define + 12]
    assert declared[0][1:3] == ("function", {"declaration", "static", "defaultLibrary"})
    assert find(decoded, "i32", define)[0][1:3] == ("type", {"defaultLibrary"})
    for word in ("define", "call", "ret", "getelementptr", "br", "declare", "attributes", "global", "comdat"):
        assert find(decoded, word)[0][1] == "keyword", word
    assert find(decoded, "nounwind", define + 14)[0][1] == "modifier"
    client.editor.close(uri)


async def test_tokens_are_ordered_and_never_overlap_on_the_example(legend_client):
    client = legend_client
    uri = "file:///virtual/tokens/example.ll"
    text = EXAMPLE.read_text()
    client.editor.open(uri, text)
    decoded = await tokens(client, uri)
    assert len(decoded) > 500
    definitions = [t for t in decoded if "definition" in t[2]]
    assert {"@weighted_sum", "@grade", "%3", "7", "#0", "!6", "@.str"} <= {t[0] for t in definitions}
    # Every use of %3 in @weighted_sum is a variable without the definition modifier.
    weighted = next(n for n, l in enumerate(text.split("\n")) if "@weighted_sum(" in l)
    uses = [t for t in decoded if t[0] == "%3" and weighted < t[3] < weighted + 40]
    assert [t[2] for t in uses].count({"declaration", "definition"}) == 1 and len(uses) == 3

    # A range request gives exactly the full result's tokens on those lines.
    client_range = types.Range(start=types.Position(line=20, character=0), end=types.Position(line=40, character=0))
    ranged = await tokens(client, uri, client_range)
    assert ranged and ranged == [t for t in decoded if 20 <= t[3] <= 40]
    client.editor.close(uri)
