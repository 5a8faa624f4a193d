"""Code lenses: the figures and the actions on the line above each `define`, where a long signature
cannot hide them; the same figures as the inlay hints, and actions that run the server's commands."""

from __future__ import annotations

import re
import time

import pytest
from lsprotocol import types

from lsp_server.engine import FunctionResult, Measurement
from lsp_server.features.codelens import MEASURING, figures, lenses_for, optimize_title

from .conftest import EXAMPLE, plain, wait_for_hints, wait_until

in_server = pytest.mark.asyncio(loop_scope="module")

FIGURES = re.compile(r"^(\d+) → -Oz (\d+) → best (\d+) \((−\d+\.\d%|±0%)\)$")
HINT = re.compile(r"^(\d+) instrs · -Oz (\d+) · best (\d+)")
COMMANDS = {"passpilot.optimizeFunction", "passpilot.previewFunction", "passpilot.showPassTrace"}


async def lenses(client, uri: str) -> list[types.CodeLens]:
    return await client.text_document_code_lens_async(types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))) or []


@in_server
async def test_lenses_show_the_hint_figures_above_each_define(client):
    # A function no earlier test measured (the cache outlives a test), so that a refresh must follow.
    fresh = f"\ndefine i64 @fresh_{time.time_ns()}(i64 %x) {{\n  %a = add i64 %x, {time.time_ns() % 1000}\n  ret i64 %a\n}}\n"
    text = EXAMPLE.read_text() + fresh
    uri = "file:///virtual/lens/example.ll"
    client.editor.open(uri, text)
    hints = await wait_for_hints(client, uri, 8)
    lines = text.split("\n")
    by_line = {hint.position.line: HINT.match(hint.label).groups() for hint in hints}
    found = await lenses(client, uri)
    assert {lens.range.start.line for lens in found} == set(by_line)
    for line, hinted in by_line.items():
        row = [lens for lens in found if lens.range.start.line == line]
        assert lines[line].startswith("define")
        assert row[0].range.start.character == 0
        match = FIGURES.match(row[0].command.title)
        assert match, row[0].command.title
        assert match.groups()[:3] == hinted
        original, oz, best = (int(g) for g in hinted)
        titles = [lens.command.title for lens in row[1:]]
        expected = f"Optimize −{round(100 * (oz - best) / oz)}%" if best < oz else "Optimize (-Oz)"
        assert titles == [expected, "Diff", "Passes"]
        name = re.search(r"@([\w.]+)\(", lines[line]).group(1)
        for lens in row[1:]:
            assert lens.command.command in COMMANDS
            assert plain(lens.command.arguments) == [{"uri": uri, "function": name}]
    assert any(lens.command.title.startswith("Optimize −") for lens in found), "the example has a win over -Oz"
    if client.profile == "visual-studio-code":  # it declares workspace.codeLens.refreshSupport
        await wait_until(lambda: client.lens_refreshes > 0, timeout=30, what="a code lens refresh")
    client.editor.close(uri)


@in_server
async def test_the_lens_actions_run(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/lens/run.ll"
    client.editor.open(uri, text)
    await wait_for_hints(client, uri, 7)
    row = [lens for lens in await lenses(client, uri) if lens.command.arguments and plain(lens.command.arguments)[0]["function"] == "grade"]
    by_title = {lens.command.title.split(" ")[0]: lens.command for lens in row}
    preview = plain(await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=by_title["Diff"].command, arguments=[plain(a) for a in by_title["Diff"].arguments])
    ))
    assert preview["function"] == "grade" and "define" in preview["optimized_text"]
    trace = plain(await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=by_title["Passes"].command, arguments=[plain(a) for a in by_title["Passes"].arguments])
    ))
    assert trace["function"] == "grade" and trace["final"] == preview["best"]
    applied = plain(await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=by_title["Optimize"].command, arguments=[plain(a) for a in by_title["Optimize"].arguments])
    ))
    assert applied["applied"] is True
    assert client.editor.text(uri) != text
    client.editor.close(uri)


def _result(original: int, oz: int | None, best: int | None) -> FunctionResult:
    oz_measurement = Measurement("default<Oz>", "oz", oz, None if oz is not None else "opt crashed")
    best_measurement = Measurement("sroa", "coreset", best) if best is not None else None
    return FunctionResult(None, original, oz_measurement, best_measurement, (oz_measurement,))  # type: ignore[arg-type]


def test_titles():
    assert figures(_result(70, 35, 30)) == "70 → -Oz 35 → best 30 (−14.3%)"
    assert optimize_title(_result(70, 35, 30)) == "Optimize −14%"
    assert figures(_result(70, 35, 35)) == "70 → -Oz 35 → best 35 (±0%)"
    assert optimize_title(_result(70, 35, 35)) == "Optimize (-Oz)"
    assert figures(_result(70, None, 40)) == "70 → -Oz failed → best 40"


def test_a_function_without_figures_gets_one_placeholder_lens():
    line = types.Range(start=types.Position(line=3, character=0), end=types.Position(line=3, character=9))
    waiting = lenses_for("file:///x.ll", "f", line, None)
    assert [lens.command.title for lens in waiting] == [MEASURING]
    assert len(lenses_for("file:///x.ll", "f", line, _result(10, 5, 4))) == 4
    assert len(lenses_for("file:///x.ll", "f", line, _result(10, None, None))) == 1
