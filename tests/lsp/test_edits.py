"""Code actions and commands: every edit, applied to the document, verifies with opt-22 and leaves the
other functions (and the rest of the text) as they were."""

from __future__ import annotations

import re

import pytest
from lsprotocol import types

from lsp_server.compiler import find_opt, verify
from lsp_server.ir import ModuleLayout, function_instruction_counts, parse

from .conftest import EXAMPLE, OPT, SMALL, code_action, options, plain, run_code_action, session, wait_for_hints, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEXT = EXAMPLE.read_text()
LABEL = re.compile(r"^(\d+) instrs · -Oz (\d+) · best (\d+)")


def figures(hints: list[types.InlayHint], text: str) -> dict[str, tuple[int, int, int]]:
    layout = ModuleLayout.from_text(text)
    by_line = {span.header_end_line: span.name for span in layout.functions}
    return {by_line[h.position.line]: tuple(int(x) for x in LABEL.match(h.label).groups()) for h in hints}


def assert_verifies(text: str) -> None:
    run = verify(find_opt(OPT), text)
    assert run.ok, run.error


def assert_only_function_changed(old: str, new: str, name: str) -> None:
    """Lines before the function and after it are untouched; anything else is appended at the end."""
    old_layout, new_layout = ModuleLayout.from_text(old), ModuleLayout.from_text(new)
    old_span, new_span = old_layout.function(name), new_layout.function(name)
    first = old_span.attrs_comment_line if old_span.attrs_comment_line is not None else old_span.start_line
    assert new_layout.lines[:first] == old_layout.lines[:first]
    tail = old_layout.lines[old_span.end_line + 1 :]
    while tail and tail[-1] == "":
        tail = tail[:-1]
    assert new_layout.lines[new_span.end_line + 1 : new_span.end_line + 1 + len(tail)] == tail
    for span in old_layout.functions:
        if span.name != name:
            assert new_layout.function_text(new_layout.function(span.name)) == old_layout.function_text(span)


def counts(text: str) -> dict[str, int]:
    return function_instruction_counts(parse(text))


async def open_measured(client, uri: str, text: str = TEXT) -> dict[str, tuple[int, int, int]]:
    client.editor.open(uri, text)
    return figures(await wait_for_hints(client, uri, text.count("\ndefine ")), text)


def define_line(text: str, name: str) -> int:
    return ModuleLayout.from_text(text).function(name).start_line


async def test_optimize_function_code_action(client):
    uri = "file:///virtual/edits/optimize.ll"
    measured = await open_measured(client, uri)
    inside = define_line(TEXT, "grade") + 5
    await run_code_action(client, uri, inside, "Optimize function")
    new = await wait_until(lambda: client.editor.text(uri) != TEXT and client.editor.text(uri), what="the edit")
    assert_verifies(new)
    assert_only_function_changed(TEXT, new, "grade")
    original, oz, best = measured["grade"]
    assert counts(new)["grade"] == best < oz
    client.editor.close(uri)


async def test_optimize_function_with_oz_code_action(client):
    uri = "file:///virtual/edits/oz.ll"
    measured = await open_measured(client, uri)
    await run_code_action(client, uri, define_line(TEXT, "max_of") + 3, "Optimize function with -Oz")
    new = await wait_until(lambda: client.editor.text(uri) != TEXT and client.editor.text(uri), what="the edit")
    assert_verifies(new)
    assert_only_function_changed(TEXT, new, "max_of")
    assert counts(new)["max_of"] == measured["max_of"][1]
    client.editor.close(uri)


async def test_insert_run_line_code_action(client):
    uri = "file:///virtual/edits/run-line.ll"
    await open_measured(client, uri)
    start = define_line(TEXT, "weighted_sum")
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=start, character=TEXT.split("\n")[start].index("@weighted_sum") + 2),
        )
    )
    passes = re.search(r"best pass list \(source: \w+\): `([^`]+)`", hover.contents.value).group(1)
    await run_code_action(client, uri, start + 10, "Insert pass list as RUN line")
    new = await wait_until(lambda: client.editor.text(uri) != TEXT and client.editor.text(uri), what="the edit")
    assert_verifies(new)
    old_lines, new_lines = TEXT.split("\n"), new.split("\n")
    above = start - 1  # the `; Function Attrs:` comment
    assert old_lines[above].startswith("; Function Attrs:")
    assert new_lines[above] == f"; RUN: opt -passes='{passes}' -S %s"
    assert new_lines[:above] + new_lines[above + 1 :] == old_lines
    # Asking again replaces the RUN line instead of stacking another one.
    await run_code_action(client, uri, start + 10, "Insert pass list as RUN line")
    await wait_until(lambda: client.editor.version(uri) >= 3, what="the second edit")
    assert client.editor.text(uri) == new
    client.editor.close(uri)


async def test_actions_are_offered_only_inside_functions_of_valid_text(client):
    uri = "file:///virtual/edits/offers.ll"
    await open_measured(client, uri)
    outside = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=2, character=0), end=types.Position(line=2, character=0)),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert not outside
    action = await code_action(client, uri, define_line(TEXT, "grade") + 1, "Optimize function")
    if client.profile in ("visual-studio-code", "neovim"):  # both resolve `edit` lazily
        assert action.edit is None and action.data["function"] == "grade"
    client.editor.close(uri)


async def execute(client, command: str, argument: dict) -> dict:
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(command=command, arguments=[argument]))
    return plain(result)


async def test_commands_optimize_function_and_insert_pass_list(client):
    uri = "file:///virtual/edits/commands.ll"
    measured = await open_measured(client, uri)
    line = define_line(TEXT, "weighted_sum") + 4
    result = await execute(client, "passpilot.optimizeFunction", {"uri": uri, "position": {"line": line, "character": 3}})
    assert result["applied"] is True and result["function"] == "weighted_sum"
    assert (result["original"], result["oz"], result["best"]) == measured["weighted_sum"]
    assert result["source"] in ("oz", "coreset", "search") and result["passes"]
    new = client.editor.text(uri)
    assert_verifies(new)
    assert_only_function_changed(TEXT, new, "weighted_sum")
    assert counts(new)["weighted_sum"] == result["best"]

    result = await execute(client, "passpilot.insertPassList", {"uri": uri, "function": "checksum"})
    assert result["applied"] is True and result["passes"]
    newer = client.editor.text(uri)
    assert f"; RUN: opt -passes='{result['passes']}' -S %s" in newer.split("\n")
    assert_verifies(newer)

    result = await execute(client, "passpilot.optimizeFunction", {"uri": uri, "function": "no_such_function"})
    assert result["applied"] is False and "no function named @no_such_function" in result["reason"]
    client.editor.close(uri)


async def test_preview_function_changes_nothing(client):
    uri = "file:///virtual/edits/preview.ll"
    measured = await open_measured(client, uri)
    edits_before = len(client.applied_edits)
    result = await execute(client, "passpilot.previewFunction", {"uri": uri, "function": "grade"})
    assert client.editor.text(uri) == TEXT and len(client.applied_edits) == edits_before
    assert result["function"] == "grade" and (result["original"], result["oz"], result["best"]) == measured["grade"]
    layout = ModuleLayout.from_text(TEXT)
    span = layout.function("grade")
    assert result["original_text"] == "\n".join(layout.lines[span.attrs_comment_line : span.end_line + 1])
    assert "define dso_local i32 @grade(" in result["optimized_text"] and result["passes"] and result["source"]
    client.editor.close(uri)


async def test_optimize_module_command(client):
    uri = "file:///virtual/edits/module.ll"
    measured = await open_measured(client, uri)
    result = await execute(client, "passpilot.optimizeModule", {"uri": uri})
    assert result["applied"] is True
    rows = {row["function"]: row for row in result["functions"]}
    assert set(rows) == set(measured)
    new = client.editor.text(uri)
    assert_verifies(new)
    after = counts(new)
    for name, (original, oz, best) in measured.items():
        row = rows[name]
        assert row["verified"] and (row["original"], row["oz"], row["best"]) == (original, oz, best)
        assert after[name] <= oz
    client.editor.close(uri)


@pytest.mark.parametrize("profile", ["emacs"])
async def test_code_actions_without_resolve_support_run_commands(profile, cache_dir):
    """Emacs (eglot) cannot resolve code actions: each action carries the server command instead."""
    text = SMALL.read_text()
    uri = "file:///virtual/edits/emacs.ll"
    async with session(profile, options(cache_dir)) as client:
        client.editor.open(uri, text)
        await wait_until(lambda: client.published, what="diagnostics")
        line = define_line(text, "sum_squares") + 3
        action = await code_action(client, uri, line, "Optimize function")
        assert action.command is not None and action.command.command == "passpilot.optimizeFunction"
        await run_code_action(client, uri, line, "Optimize function")
        new = await wait_until(lambda: client.editor.text(uri) != text and client.editor.text(uri), what="the edit")
        assert_verifies(new)
        assert_only_function_changed(text, new, "sum_squares")
