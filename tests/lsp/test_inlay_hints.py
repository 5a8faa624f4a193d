"""Inlay hints: the figures are what `opt -passes='default<Oz>'` gives, placed at the end of each define."""

from __future__ import annotations

import re

import pytest
from lsprotocol import types

from lsp_server.compiler import find_opt, run_opt
from lsp_server.engine import standalone_functions
from lsp_server.ir import count_instructions

from .conftest import EXAMPLE, OPT, wait_for_hints, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

LABEL = re.compile(r"^(\d+) instrs · -Oz (\d+) · best (\d+) \((−\d+\.\d%|±0%)\)$")


def expected_figures(text: str) -> dict[str, tuple[int, int]]:
    """(original, -Oz) instruction counts of every function, straight from opt-22."""
    opt = find_opt(OPT)
    layout, functions = standalone_functions(text)
    figures = {}
    for function in functions:
        run = run_opt(opt, "default<Oz>", function.text)
        assert run.ok, run.error
        figures[function.name] = (count_instructions(function.text), count_instructions(run.output))
    return figures


def units(text: str, encoding: str) -> int:
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode())
    return len(text.encode("utf-16-le")) // 2


async def test_hints_match_opt_default_oz(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/hints/example.ll"
    client.editor.open(uri, text)
    expected = expected_figures(text)
    hints = await wait_for_hints(client, uri, len(expected))
    lines = text.split("\n")
    header_lines = {n: line for n, line in enumerate(lines) if line.startswith("define")}
    names = {n: re.search(r"@([\w.]+)\(", line).group(1) for n, line in header_lines.items()}
    assert len(hints) == len(expected) == 7
    for hint in hints:
        line = hint.position.line
        assert line in names, f"hint not on a define line: {hint}"
        assert lines[line].rstrip().endswith("{")
        assert hint.position.character == units(lines[line], client.editor.encoding)
        match = LABEL.match(hint.label)
        assert match, hint.label
        original, oz, best = (int(match.group(i)) for i in (1, 2, 3))
        assert (original, oz) == expected[names[line]], names[line]
        assert best <= oz
        change = match.group(4)
        if best == oz:
            assert change == "±0%"
        else:
            assert change == f"−{100 * (oz - best) / oz:.1f}%"
        assert "best (" in hint.tooltip and "pass lists measured" in hint.tooltip
    # At least one function beats -Oz with budget 2 on this file (see `passpilot optimize`).
    assert any("−" in hint.label for hint in hints)
    client.editor.close(uri)


async def test_hints_only_for_the_requested_range(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/hints/range.ll"
    client.editor.open(uri, text)
    await wait_for_hints(client, uri, 7)
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=60, character=0)),
        )
    )
    define_lines = [n for n, line in enumerate(text.split("\n")[:61]) if line.startswith("define")]
    assert [h.position.line for h in hints] == define_lines == [13, 54]
    client.editor.close(uri)


async def test_refresh_is_sent_only_to_clients_that_support_it(client):
    text = EXAMPLE.read_text().replace("@weighted_sum", "@weighted_total")  # new text: measured afresh
    uri = "file:///virtual/hints/refresh.ll"
    before = client.hint_refreshes
    client.editor.open(uri, text)
    await wait_for_hints(client, uri, 7)
    supports = client.capabilities.workspace.inlay_hint is not None and client.capabilities.workspace.inlay_hint.refresh_support
    if supports:
        await wait_until(lambda: client.hint_refreshes > before, timeout=10, what="workspace/inlayHint/refresh")
    else:
        assert client.hint_refreshes == 0
    client.editor.close(uri)


async def test_status_notifications(client):
    """`passpilot/status` after initialization, and busy/idle around jobs (docs/design.md)."""
    first = client.statuses[0]
    assert set(first) == {"opt", "backend", "model", "busy", "message"}
    final = client.statuses[-1]
    assert final["backend"] in ("opt", "libllvm")
    assert final["opt"] == {"path": OPT, "version": final["opt"]["version"]} and final["opt"]["version"].startswith("22.")
    assert final["model"] is None  # model.path is "none" in these tests
    assert any(s["busy"] for s in client.statuses) and any(not s["busy"] for s in client.statuses)
    assert any(s["message"] == "PassPilot: measuring functions" for s in client.statuses if s["busy"])
