"""Smoke test of the README's Neovim set-up: the `init_options` and `settings` it documents, as Neovim sends
them, give a server that takes every key without a warning, shows hints and lenses, and runs the pass
explorer command the README maps to `<leader>pp` (with the argument shape it builds)."""

from __future__ import annotations

import json
import re

import pytest
from lsprotocol import types

from lsp_server.config import Settings

from .conftest import ROOT, SMALL, session, wait_for_hints, wait_until



def lua_table(source: str, key: str) -> dict:
    """`key = { ... },` of the README's Lua block as JSON (the block uses flat Lua tables only: names,
    strings, integers and nested tables)."""
    found = re.search(rf"\b{key} = (\{{.*\}}),", source)
    assert found, f"the README's Neovim block has no `{key} = {{...}}`"
    text = re.sub(r"\b([A-Za-z_]\w*) =", r'"\1":', found.group(1))
    return json.loads(text)


def readme_neovim_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Neovim") :]
    return section[section.index("```lua") : section.index("```", section.index("```lua") + 6)]


def flat_keys(obj: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in obj.items():
        keys |= flat_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}"}
    return keys


def test_the_readme_block_names_only_known_settings():
    """The server ignores unknown keys, so a misspelt key in the README would go unnoticed: check them here."""
    block = readme_neovim_block()
    known = flat_keys(Settings().to_json())
    init_options, settings = lua_table(block, "init_options"), lua_table(block, "settings")
    assert init_options and set(settings) == {"passpilot"}
    assert flat_keys(init_options) <= known, flat_keys(init_options) - known
    assert flat_keys(settings["passpilot"]) <= known, flat_keys(settings["passpilot"]) - known


@pytest.mark.asyncio(loop_scope="function")
async def test_the_documented_settings_start_a_working_server(tmp_path):
    block = readme_neovim_block()
    init_options = lua_table(block, "init_options")
    settings = lua_table(block, "settings")
    init_options["cache"] = {"dir": str(tmp_path / "cache")}  # keep the user's cache out of tests
    async with session("neovim", init_options, configuration=settings["passpilot"]) as client:
        text = SMALL.read_text()
        uri = "file:///virtual/neovim/readme.ll"
        client.editor.open(uri, text)
        hints = await wait_for_hints(client, uri, text.count("\ndefine "), timeout=120)
        assert all(re.match(r"^\d+ instrs · -Oz \d+ · best \d+", h.label) for h in hints)
        warnings = [m.message for m in client.messages if "setting" in m.message]
        assert warnings == [], warnings  # every documented key is a key the server knows, with a valid value
        lenses = await client.text_document_code_lens_async(types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        assert lenses and any(lens.command and lens.command.command == "passpilot.showPassTrace" for lens in lenses)

        # The `<leader>pp` mapping: `passpilot.showPassTrace` with `{uri, position}` at the cursor.
        line = text.split("\n").index(next(l for l in text.split("\n") if l.startswith("define dso_local i32 @sum_squares"))) + 2
        answer = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="passpilot.showPassTrace", arguments=[{"uri": uri, "position": {"line": line, "character": 2}}]
            )
        )
        assert answer["function"] == "sum_squares" and answer["steps"] >= 0
        trace = answer["uri"]
        assert trace.endswith("sum_squares.passes.diff")
        await wait_until(lambda: client.shown_documents, timeout=30, what="window/showDocument")
        assert client.shown_documents[-1].uri == trace
