"""Progress and cancellation of slow jobs, with an `opt` that is slow on purpose.

The fake `opt` sleeps before running the real one whenever it is asked to print a module (`-S`, i.e. a
measurement); `--version`, `--print-passes` and verification pass straight through.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from .conftest import PROFILES, SMALL, delayed_opt, options, session, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="function")

SLEEP_S = 30


@pytest.fixture
def slow_opt(tmp_path: Path) -> str:
    return delayed_opt(tmp_path / "opt-slow", "-S", f"sleep {SLEEP_S}")


def progress_titled(client, prefix: str) -> str | None:
    for token, values in client.progress_reports.items():
        if values and isinstance(values[0], types.WorkDoneProgressBegin) and values[0].title.startswith(prefix):
            return token
    return None


def command(uri: str) -> types.ExecuteCommandParams:
    return types.ExecuteCommandParams(command="passpilot.optimizeFunction", arguments=[{"uri": uri, "function": "clamp"}])


@pytest.mark.parametrize("profile", PROFILES)
async def test_progress_cancel_stops_the_job_and_leaves_the_document(profile, slow_opt, tmp_path):
    text = SMALL.read_text()
    uri = "file:///virtual/cancel/progress.ll"
    settings = options(tmp_path / "cache", opt={"path": slow_opt}, budget=0, compiler={"backend": "opt"})
    async with session(profile, settings) as client:
        client.editor.open(uri, text)
        started = time.monotonic()
        request = asyncio.ensure_future(client.workspace_execute_command_async(command(uri)))
        token = await wait_until(lambda: progress_titled(client, "PassPilot: optimizing @clamp"), timeout=10, what="progress")
        begin = client.progress_reports[token][0]
        assert begin.cancellable is True
        client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(request, 10)
        assert time.monotonic() - started < SLEEP_S / 2
        await wait_until(lambda: isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd), what="progress end")

        # The background measurement of the document is a job too: cancelling it leaves the server idle.
        background = await wait_until(lambda: progress_titled(client, "PassPilot: measuring"), timeout=10, what="background progress")
        client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=background))
        await wait_until(lambda: client.statuses and client.statuses[-1]["busy"] is False, timeout=10, what="an idle status")
        await asyncio.sleep(0.5)
        assert client.editor.text(uri) == text and client.editor.version(uri) == 1
        assert client.applied_edits == []


@pytest.mark.parametrize("profile", PROFILES)
async def test_cancel_request_stops_the_command(profile, slow_opt, tmp_path):
    text = SMALL.read_text()
    uri = "file:///virtual/cancel/request.ll"
    settings = options(tmp_path / "cache", opt={"path": slow_opt}, budget=0, compiler={"backend": "opt"})
    async with session(profile, settings) as client:
        client.editor.open(uri, text)
        started = time.monotonic()
        pending = client.protocol.send_request(types.WORKSPACE_EXECUTE_COMMAND, command(uri), msg_id="slow-command")
        await wait_until(lambda: progress_titled(client, "PassPilot: optimizing @clamp"), timeout=10, what="progress")
        client.cancel_request(types.CancelParams(id="slow-command"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(asyncio.wrap_future(pending), 10)
        assert time.monotonic() - started < SLEEP_S / 2
        # The job behind the request ends too (its progress reports the end), and nothing is applied.
        token = progress_titled(client, "PassPilot: optimizing @clamp")
        await wait_until(lambda: isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd), what="progress end")
        assert client.progress_reports[token][-1].message == "cancelled"
        await asyncio.sleep(0.5)
        assert client.editor.text(uri) == text and client.applied_edits == []
