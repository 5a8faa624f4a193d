"""A client may answer a server's request after the server stopped waiting for it (a job ended before the
client created its progress token): the server drops the answer, without a traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types

from .conftest import SERVER, SMALL, delayed_opt, options, plain, start, wait_until
from .fuzz_sessions import TRACEBACK, CapturingClient, make_client

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_an_answer_that_comes_after_the_job_ended_is_dropped(tmp_path: Path):
    slow = delayed_opt(tmp_path / "opt-slow", "-S", "sleep 1")
    client = make_client(CapturingClient)
    asked, answered = [], []

    async def create_progress_late(params: types.WorkDoneProgressCreateParams):
        asked.append(params.token)
        await asyncio.sleep(4)  # long after the job that asked for it has ended
        answered.append(params.token)

    client.protocol.fm.features[types.WINDOW_WORK_DONE_PROGRESS_CREATE] = create_progress_late
    await client.start_io(*SERVER.server_command)
    try:
        await start(client, "visual-studio-code", options(tmp_path / "cache", opt={"path": str(slow)}, budget=0, compiler={"backend": "opt"}))
        uri = "file:///virtual/late/answers.ll"
        client.editor.open(uri, SMALL.read_text())
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="passpilot.previewFunction", arguments=[{"uri": uri, "function": "clamp"}])
        )
        assert plain(result)["function"] == "clamp"
        await wait_until(lambda: answered and len(answered) == len(asked), timeout=30, what="the late answers")
        await asyncio.sleep(1)
        await asyncio.wait_for(client.shutdown_session(), 10)
    finally:
        if client._server is not None and client._server.returncode is None:  # noqa: SLF001
            client._server.kill()  # noqa: SLF001
        await client.stop()
    assert not any(TRACEBACK in line for line in client.stderr_lines), "".join(client.stderr_lines)
