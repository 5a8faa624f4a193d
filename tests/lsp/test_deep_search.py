""""Optimize function (deep search)" against the real server: the code action and its command, progress
on the client's own token, the checked and verified rewrite, cancellation, and the search's figures in
hover."""

from __future__ import annotations

import asyncio
import re

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled

from .conftest import code_action, plain, wait_until
from .test_edits import TEXT, assert_only_function_changed, assert_verifies, counts, define_line, hover_text, open_measured

pytestmark = pytest.mark.asyncio(loop_scope="module")

TITLE = "Optimize function (deep search)"
COMMAND = "passpilot.deepOptimizeFunction"
PROGRESS = re.compile(r"^([\d,]+) candidates · best (\d+)(?: \((?:−\d+\.\d%|±0%|\+\d+\.\d%) vs -Oz\))? · \d+/\d+ s$")
SEARCHED = re.compile(r"deep search: ([\d,]+) candidates in (\d+\.\d) s \(([^)]+)\); the winner came from (.+)")


def deep_command(uri: str, function: str, token: str, seconds: float) -> types.ExecuteCommandParams:
    return types.ExecuteCommandParams(
        command=COMMAND, arguments=[{"uri": uri, "function": function, "seconds": seconds}], work_done_token=token
    )


def messages(client, token: str) -> list[str]:
    return [v.message for v in client.progress_reports.get(token, []) if isinstance(v, types.WorkDoneProgressReport) and v.message]


async def test_the_code_action_carries_the_deep_search_command(client):
    uri = "file:///virtual/deep/action.ll"
    await open_measured(client, uri)
    action = await code_action(client, uri, define_line(TEXT, "grade") + 4, TITLE)
    command = action.command if isinstance(action, types.CodeAction) else action
    # Never resolved lazily: it runs for seconds, with progress and cancel, which a resolve has not.
    assert isinstance(action, types.Command) or action.edit is None
    assert command.command == COMMAND and plain(command.arguments) == [{"uri": uri, "function": "grade"}]
    client.editor.close(uri)


async def test_deep_search_rewrites_the_function_with_progress_on_the_clients_token(client):
    uri = "file:///virtual/deep/run.ll"
    measured = await open_measured(client, uri)
    token = f"deep-run-{client.profile}"
    client.progress_reports[token] = []  # the client made this token: it is its own progress
    result = plain(await client.workspace_execute_command_async(deep_command(uri, "grade", token, 3)))
    original, oz, budget_best = measured["grade"]
    assert result["applied"] is True and result["function"] == "grade"
    assert (result["original"], result["oz"]) == (original, oz)
    assert result["best"] <= budget_best < oz  # never worse than what the budget found
    search = result["search"]
    assert search["tried"] > 0 and search["stopped"] in ("deadline", "converged", "exhausted")
    assert search["seconds"] <= 3 + 5  # the time limit, plus printing and checking the winner
    new = client.editor.text(uri)
    assert_verifies(new)
    assert_only_function_changed(TEXT, new, "grade")
    assert counts(new)["grade"] == result["best"]

    values = client.progress_reports[token]
    assert isinstance(values[0], types.WorkDoneProgressBegin) and values[0].title == "PassPilot: deep search of @grade"
    assert values[0].cancellable is True
    assert isinstance(values[-1], types.WorkDoneProgressEnd)
    shown = [m for m in messages(client, token) if PROGRESS.match(m)]
    assert shown, messages(client, token)
    tried = [int(PROGRESS.match(m).group(1).replace(",", "")) for m in shown]
    bests = [int(PROGRESS.match(m).group(2)) for m in shown]
    assert tried == sorted(tried) and bests == sorted(bests, reverse=True)  # more candidates, never a worse best
    assert bests[-1] == result["best"]
    percentages = [v.percentage for v in values[1:] if isinstance(v, types.WorkDoneProgressReport) and v.percentage is not None]
    assert percentages == sorted(percentages) and all(0 <= p <= 100 for p in percentages)
    # No token of the server's own for this command: the progress went where the client asked.
    assert not any(
        v and isinstance(v[0], types.WorkDoneProgressBegin) and v[0].title.startswith("PassPilot: deep search")
        for t, v in client.progress_reports.items()
        if t != token
    )

    text = await hover_text(client, uri, new, "grade")
    found = SEARCHED.search(text)
    assert found and "rewritten by PassPilot from the deep search" in text, text
    assert int(found.group(1).replace(",", "")) == search["tried"] and found.group(4) == search["winner_source"]
    client.editor.close(uri)


async def test_cancel_changes_nothing_and_keeps_the_best_so_far(client):
    uri = "file:///virtual/deep/cancel.ll"
    measured = await open_measured(client, uri)
    token = f"deep-cancel-{client.profile}"
    client.progress_reports[token] = []
    msg_id = f"deep-cancel-request-{client.profile}"
    pending = client.protocol.send_request(types.WORKSPACE_EXECUTE_COMMAND, deep_command(uri, "weighted_sum", token, 600), msg_id=msg_id)
    budget_best = measured["weighted_sum"][2]

    def as_good_as_the_budget():
        shown = [m for m in messages(client, token) if PROGRESS.match(m)]
        return shown if shown and int(PROGRESS.match(shown[-1]).group(2)) <= budget_best else None

    shown = await wait_until(as_good_as_the_budget, timeout=60, what="progress with a best as good as the budget's")
    client.cancel_request(types.CancelParams(id=msg_id))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(pending), 20)
    await wait_until(lambda: isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd), what="the end of the progress")
    assert client.progress_reports[token][-1].message == "cancelled"
    await asyncio.sleep(0.5)
    assert client.editor.text(uri) == TEXT and client.editor.version(uri) == 1
    assert all(edit.label != "Optimize @weighted_sum (deep search)" for edit in client.applied_edits)

    # The search's best so far became the function's figures: hover says so, and a plain "Optimize
    # function" writes it without searching again.
    best_seen = int(PROGRESS.match(shown[-1]).group(2))
    text = ""
    for _ in range(50):
        text = await hover_text(client, uri, TEXT, "weighted_sum")
        if SEARCHED.search(text):
            break
        await asyncio.sleep(0.1)
    found = SEARCHED.search(text)
    assert found and found.group(3) == "cancelled", text
    result = plain(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="passpilot.optimizeFunction", arguments=[{"uri": uri, "function": "weighted_sum"}])
        )
    )
    assert result["applied"] is True
    assert result["best"] <= best_seen <= budget_best
    client.editor.close(uri)


async def test_bad_seconds_are_invalid_params(client):
    uri = "file:///virtual/deep/bad.ll"
    client.editor.open(uri, TEXT)
    for seconds in (0, -1, "10", True, 10**6):
        with pytest.raises(JsonRpcInvalidParams, match="seconds"):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=COMMAND, arguments=[{"uri": uri, "function": "grade", "seconds": seconds}])
            )
    client.editor.close(uri)
