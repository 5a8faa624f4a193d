"""`shutdown` and `exit` end the server at once, even while work that cannot be interrupted runs.

The fake `opt` hangs in `-passes=verify` (the check of a rewritten module, which is not cancellable, like
the model's inference), and records its process id so the test can see that it was ended too.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from .conftest import SERVER, SMALL, delayed_opt, options, start, wait_for_hints, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="function")

HANG_S = 60


@pytest.fixture
def hanging_verify(tmp_path: Path) -> tuple[str, Path]:
    pids = tmp_path / "pids"
    return delayed_opt(tmp_path / "opt-hangs-in-verify", "-passes=verify", f"echo $$ >> {pids}; sleep {HANG_S}"), pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("cancel_first", [False, True], ids=["command-pending", "command-cancelled"])
async def test_exit_does_not_wait_for_uninterruptible_work(cancel_first, hanging_verify, tmp_path):
    """With the command still pending, or cancelled (its answer sent, its thread still in `opt`)."""
    opt, pids = hanging_verify
    client = await SERVER.start()
    try:
        await start(client, "visual-studio-code", options(tmp_path / "cache", opt={"path": opt}, compiler={"backend": "opt"}))
        uri = "file:///virtual/exit/hang.ll"
        client.editor.open(uri, SMALL.read_text())
        await wait_for_hints(client, uri, 4)
        command = types.ExecuteCommandParams(command="passpilot.optimizeFunction", arguments=[{"uri": uri, "function": "clamp"}])
        request = client.protocol.send_request(types.WORKSPACE_EXECUTE_COMMAND, command, msg_id="optimize")
        await wait_until(lambda: pids.exists() and pids.read_text().split(), timeout=30, what="the verification to start")
        hung = [int(pid) for pid in pids.read_text().split()]
        if cancel_first:
            client.cancel_request(types.CancelParams(id="optimize"))
            with pytest.raises(JsonRpcRequestCancelled):
                await asyncio.wait_for(asyncio.wrap_future(request), 10)
            assert all(alive(pid) for pid in hung)  # the verification cannot be interrupted
        started = time.monotonic()
        await asyncio.wait_for(client.shutdown_session(), 10)  # shutdown, exit, and the process is gone
        elapsed = time.monotonic() - started
        assert elapsed < 5, f"the server took {elapsed:.1f} s to exit"
        assert client._server.returncode == 0  # noqa: SLF001 - `exit` after `shutdown`
        await wait_until(lambda: not any(alive(pid) for pid in hung), timeout=5, what="the hanging opt to be ended")
    finally:
        if client._server is not None and client._server.returncode is None:  # noqa: SLF001
            client._server.kill()  # noqa: SLF001 - a server that did not exit must not hang the test session
        await client.stop()
