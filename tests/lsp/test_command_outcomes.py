"""Commands report what really happened to their edit: nothing is sent for a document the client has not
opened, and a refused edit is reported as not applied, with the client's reason."""

from __future__ import annotations

import pytest
from lsprotocol import types

from .conftest import SMALL, plain, wait_for_hints

pytestmark = pytest.mark.asyncio(loop_scope="module")

COMMANDS = [
    ("passpilot.optimizeFunction", {"function": "clamp"}),
    ("passpilot.insertPassList", {"function": "clamp"}),
    ("passpilot.optimizeModule", {}),
]


async def execute(client, command: str, argument: dict) -> dict:
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(command=command, arguments=[argument]))
    return plain(result)


@pytest.mark.parametrize(("command", "argument"), COMMANDS, ids=[c for c, _ in COMMANDS])
async def test_a_file_the_client_never_opened_is_not_edited(client, tmp_path, command, argument):
    path = tmp_path / "on-disk.ll"
    path.write_text(SMALL.read_text())
    uri = path.as_uri()
    sent = len(client.applied_edits)
    result = await execute(client, command, {"uri": uri, **argument})
    assert result["applied"] is False
    assert "not open in the editor" in result["reason"]
    assert len(client.applied_edits) == sent
    assert path.read_text() == SMALL.read_text()


@pytest.mark.parametrize(("command", "argument"), COMMANDS, ids=[c for c, _ in COMMANDS])
async def test_an_edit_the_client_refuses_is_reported_as_not_applied(client, command, argument):
    uri = f"file:///virtual/outcomes/{command}.ll"
    client.editor.open(uri, SMALL.read_text())
    await wait_for_hints(client, uri, 4)
    client.refuse_edits = "the user declined the refactoring"
    try:
        result = await execute(client, command, {"uri": uri, **argument})
    finally:
        client.refuse_edits = None
    assert result["applied"] is False
    assert "the user declined the refactoring" in result["reason"]
    assert client.editor.text(uri) == SMALL.read_text() and client.editor.version(uri) == 1
    # Accepted, the same command applies its edit.
    result = await execute(client, command, {"uri": uri, **argument})
    assert result["applied"] is True and "reason" not in result
    assert client.editor.text(uri) != SMALL.read_text() and client.editor.version(uri) == 2
    client.editor.close(uri)
