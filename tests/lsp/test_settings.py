"""Settings: a budget change re-measures, a bad value warns and falls back to the default, a missing
`opt` is one clear error and no crash, and fixing `opt.path` brings the engine up."""

from __future__ import annotations

import pytest
from lsprotocol import types

from .conftest import EXAMPLE, OPT, PROFILES, SMALL, diagnostics_for, inlay_hints, options, session, wait_for_hints, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="function")


def change_configuration(client, settings: dict) -> None:
    client.set_configuration(settings, section="passpilot")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"passpilot": settings}))


def warnings(client) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Warning]


@pytest.mark.parametrize("profile", PROFILES)
async def test_budget_change_and_bad_values(profile, cache_dir):
    text = EXAMPLE.read_text()
    uri = "file:///virtual/settings/example.ll"
    start = options(cache_dir, model={"path": "none", "samples": 0})
    async with session(profile, start) as client:
        # A bad value in initializationOptions: one warning naming the key, and the default.
        assert any("`passpilot.model.samples`" in m and "using the default 4" in m for m in warnings(client)), client.messages
        client.editor.open(uri, text)
        hints = await wait_for_hints(client, uri, 7)
        assert any("−" in h.label for h in hints)  # budget 2 beats -Oz somewhere
        statuses = len(client.statuses)

        change_configuration(client, {"budget": 0})

        async def all_equal_to_oz():
            hints = await inlay_hints(client, uri, text)
            return len(hints) == 7 and all(h.label.endswith("(±0%)") and "budget 0" in h.tooltip for h in hints)

        await wait_async(all_equal_to_oz, "budget 0 hints")
        assert len(client.statuses) > statuses  # passpilot/status after the settings change
        assert not warnings(client)[1:]

        change_configuration(client, {"budget": "lots"})
        await wait_until(lambda: len(warnings(client)) >= 2, what="a warning about the budget")
        message = warnings(client)[-1]
        assert "`passpilot.budget`" in message and '"lots"' in message and "using the default 10" in message

        small = "file:///virtual/settings/small.ll"
        client.editor.open(small, SMALL.read_text())

        async def default_budget():
            hints = await inlay_hints(client, small, SMALL.read_text())
            return len(hints) == 4 and all("budget 10" in h.tooltip for h in hints)

        await wait_async(default_budget, "hints measured with the default budget")


async def wait_async(predicate, what: str, timeout: float = 60.0):
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("profile", PROFILES)
async def test_missing_opt_is_one_error_and_no_crash(profile, cache_dir):
    text = SMALL.read_text()
    uri = "file:///virtual/settings/no-opt.ll"
    async with session(profile, options(cache_dir, opt={"path": "/nonexistent/bin/opt-99"})) as client:
        errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
        assert len(errors) == 1 and "apt-get install llvm-22" in errors[0] and "/nonexistent/bin/opt-99" in errors[0]
        assert client.statuses[-1]["opt"] is None and "apt-get install llvm-22" in client.statuses[-1]["message"]
        assert client.statuses[-1]["busy"] is False

        client.editor.open(uri, text.replace("ret i32 %", "ret i32 %zzz", 1))
        diagnostics = await diagnostics_for(client, uri, version=1)
        assert "use of undefined value '%zzz" in diagnostics[0].message  # parsing does not need opt
        client.editor.replace_all(uri, text)
        assert await diagnostics_for(client, uri, version=2) == []
        assert await inlay_hints(client, uri, text) == []
        line = text.split("\n").index(next(l for l in text.split("\n") if l.startswith("define dso_local i32 @clamp(")))
        hover = await client.text_document_hover_async(
            types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=25))
        )
        assert "apt-get install llvm-22" in hover.contents.value

        # Pointing opt.path at a real opt re-assembles the engine; figures appear.
        change_configuration(client, {"opt": {"path": OPT}})
        await wait_for_hints(client, uri, 4)
        assert client.statuses[-1]["opt"]["path"] == OPT
        assert len([m for m in client.messages if m.type == types.MessageType.Error]) == 1
