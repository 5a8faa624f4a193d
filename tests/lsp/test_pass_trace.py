"""The pass explorer over LSP: `passpilot/passTrace`, `passpilot/minimizePassList`, `passpilot.showPassTrace`.

The trace of a function's best list must end at the `best` figure its inlay hint shows, and every step's
count is recounted here from the step's IR; a shown trace is a real file the client is asked to open.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled

from lsp_server.compiler import find_opt, run_opt
from lsp_server.engine import standalone_functions
from lsp_server.ir import count_instructions

from .conftest import EXAMPLE, OPT, PROFILES, delayed_opt, options, plain, session, wait_for_hints, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

TRACE = "passpilot/passTrace"
MINIMIZE = "passpilot/minimizePassList"
HINT = re.compile(r"^(\d+) instrs · -Oz (\d+) · best (\d+)")
WINNER = "sroa,instcombine<max-iterations=4;no-verify-fixpoint>,simplifycfg<no-speculate-blocks>,gvn,instcombine<no-verify-fixpoint>"  # as normalized


async def request(client, method: str, params: dict):
    return plain(await client.protocol.send_request_async(method, params))


def hint_figures(text: str, hints) -> dict[str, tuple[int, int, int]]:
    lines = text.split("\n")
    figures = {}
    for hint in hints:
        name = re.search(r"@([\w.]+)\(", lines[hint.position.line]).group(1)
        figures[name] = tuple(int(g) for g in HINT.match(hint.label).groups())
    return figures


async def test_the_trace_of_the_best_list_ends_at_the_best_figure(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/trace/example.ll"
    client.editor.open(uri, text)
    figures = hint_figures(text, await wait_for_hints(client, uri, 7))
    functions = {f.name: f for f in standalone_functions(text)[1]}
    for name, (original, oz, best) in figures.items():
        trace = await request(client, TRACE, {"uri": uri, "function": name})
        assert trace["function"] == name
        assert trace["original"] == original
        assert trace["final"] == trace["best"] == best, name
        assert trace["oz"] == oz
        assert trace["steps"] and trace["steps"][-1]["count"] == best
        before = trace["original_ir"]
        assert count_instructions(before) == count_instructions(functions[name].text)
        for step in trace["steps"]:
            assert step["count"] == count_instructions(step["ir"])
            assert step["name"].endswith("Pass") and step["target"]
            assert step["diff"].startswith("--- before")
            before = step["ir"]
        # The list really gives that count (opt itself, not the server's backend).
        reference = run_opt(find_opt(OPT), trace["passes"], functions[name].text)
        assert count_instructions(reference.output) == best
    client.editor.close(uri)


async def test_a_given_list_at_a_position_folds_passes_that_change_nothing(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/trace/position.ll"
    client.editor.open(uri, text)
    line = next(n for n, l in enumerate(text.split("\n")) if l.startswith("define") and "@grade(" in l)
    trace = await request(client, TRACE, {"uri": uri, "position": {"line": line + 3, "character": 2}, "passes": "sroa,sroa,sroa"})
    assert trace["function"] == "grade" and trace["source"] == "given"
    assert [s["name"] for s in trace["steps"]] == ["SROAPass"]
    assert trace["folded"] == 2
    assert trace["final"] < trace["original"]
    client.editor.close(uri)


async def test_refusals_are_request_errors_with_the_reason(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/trace/refusals.ll"
    client.editor.open(uri, text)
    with pytest.raises(JsonRpcException, match="rejected"):
        await request(client, TRACE, {"uri": uri, "function": "grade", "passes": "sroa,-load=/tmp/evil.so"})
    with pytest.raises(JsonRpcException, match="no function named @nothing"):
        await request(client, TRACE, {"uri": uri, "function": "nothing"})
    with pytest.raises(JsonRpcException, match="not open"):
        await request(client, MINIMIZE, {"uri": "file:///virtual/trace/closed.ll", "function": "grade"})
    with pytest.raises(JsonRpcException, match="uri"):
        await request(client, TRACE, {"function": "grade"})
    client.editor.close(uri)


async def test_minimize_keeps_the_count_with_fewer_passes(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/trace/minimize.ll"
    client.editor.open(uri, text)
    result = await request(client, MINIMIZE, {"uri": uri, "function": "weighted_sum", "passes": WINNER})
    assert result["passes"] == WINNER
    kept = result["minimized"].split(",")
    assert 0 < len(kept) < len(WINNER.split(","))
    assert sorted(kept + result["removed"]) == sorted(WINNER.split(","))
    function = next(f for f in standalone_functions(text)[1] if f.name == "weighted_sum")
    opt = find_opt(OPT)
    full = count_instructions(run_opt(opt, WINNER, function.text).output)
    assert count_instructions(run_opt(opt, result["minimized"], function.text).output) == full == result["count"]
    client.editor.close(uri)


async def test_show_pass_trace_writes_a_document_and_asks_the_client_to_show_it(client):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/trace/show.ll"
    client.editor.open(uri, text)
    shown_before = len(client.shown_documents)
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="passpilot.showPassTrace", arguments=[{"uri": uri, "function": "grade"}])
    )
    result = plain(result)
    assert result["shown"] is True
    assert client.shown_documents[shown_before:] and client.shown_documents[-1].uri == result["uri"]
    path = Path(unquote(urlparse(result["uri"]).path))
    written = path.read_text()
    assert written == result["text"]
    assert path.name == "grade.passes.diff"
    assert written.count("\n;; ") == result["steps"] > 0
    assert f"{result['original']} -> {result['final']} instructions" in written
    assert result["final"] == result["best"]
    client.editor.close(uri)


@pytest.fixture
def slow_print_opt(tmp_path: Path) -> str:
    """`opt` that is slow only when asked to print every change (the trace); measuring is quick."""
    return delayed_opt(tmp_path / "opt-slow-trace", "-print-changed", "sleep 30")


@pytest.mark.asyncio(loop_scope="function")
@pytest.mark.parametrize("profile", PROFILES)
async def test_cancel_request_stops_the_trace(profile, slow_print_opt, tmp_path):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/trace/cancel.ll"
    async with session(profile, options(tmp_path / "cache", opt={"path": slow_print_opt}, budget=0)) as client:
        client.editor.open(uri, text)
        started = time.monotonic()
        pending = client.protocol.send_request(TRACE, {"uri": uri, "function": "grade", "passes": "sroa"}, msg_id="slow-trace")

        def trace_progress():
            for token, values in client.progress_reports.items():
                if values and isinstance(values[0], types.WorkDoneProgressBegin) and "tracing" in values[0].title:
                    return token
            return None

        token = await wait_until(trace_progress, timeout=10, what="the trace's progress")
        assert client.progress_reports[token][0].cancellable is True
        client.cancel_request(types.CancelParams(id="slow-trace"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(asyncio.wrap_future(pending), 10)
        assert time.monotonic() - started < 15
        await wait_until(lambda: isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd), what="progress end")
