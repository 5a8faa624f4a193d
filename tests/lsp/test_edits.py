"""Code actions and commands: every edit, applied to the document, verifies with opt-22 and leaves the
other functions (and the rest of the text) as they were."""

from __future__ import annotations

import asyncio
import glob
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from lsprotocol import types

from lsp_server.compiler import find_opt, verify
from lsp_server.ir import ModuleLayout, function_instruction_counts, parse
from lsp_server.ir.tokens import strip_comments

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
    # Metadata nodes that only the old body used (its loop metadata) go with it (assert_tidy checks which).
    tail = tuple(line for line in tail if not re.match(r"^!\d+ = ", line) or re.match(r"^(!\d+) = ", line).group(1) in new_layout.metadata)
    assert new_layout.lines[new_span.end_line + 1 : new_span.end_line + 1 + len(tail)] == tail
    for span in old_layout.functions:
        if span.name != name:
            assert new_layout.function_text(new_layout.function(span.name)) == old_layout.function_text(span)


def counts(text: str) -> dict[str, int]:
    return function_instruction_counts(parse(text))


async def open_measured(client, uri: str, text: str = TEXT) -> dict[str, tuple[int, int, int]]:
    client.editor.open(uri, text)
    return figures(await wait_for_hints(client, uri, text.count("\ndefine ")), text)


FILECHECK = shutil.which("FileCheck-22") or shutil.which("FileCheck") or next(iter(sorted(glob.glob("/usr/bin/FileCheck-*"), reverse=True)), None)
EXTRACT = shutil.which("llvm-extract-22") or shutil.which("llvm-extract")


def hover_best(markdown: str) -> int:
    return int(re.search(r"best[^0-9]*(\d+)", markdown).group(1))


def assert_run_line_passes(text: str, line: int, best: int | None = None) -> None:
    """Run a RUN line as lit would (llvm-extract | opt | FileCheck, as argument lists): it must pass, and
    the function it prints has the `best` count that was measured."""
    if FILECHECK is None or EXTRACT is None:
        pytest.skip("FileCheck or llvm-extract is not installed")
    run = text.split("\n")[line]
    match = re.fullmatch(r"; RUN: llvm-extract --func=(\S+) -S %s \| opt -passes='([^']+)' -S \| FileCheck %s --check-prefix=(\S+)", run)
    assert match, run
    name, passes, prefix = match.groups()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "input.ll"
        source.write_text(text)
        extracted = subprocess.run([EXTRACT, f"--func={name}", "-S", str(source)], capture_output=True, text=True, check=True).stdout
        optimized = subprocess.run([OPT, f"-passes={passes}", "-S"], input=extracted, capture_output=True, text=True, check=True).stdout
        checked = subprocess.run([FILECHECK, str(source), f"--check-prefix={prefix}"], input=optimized, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    if best is not None:
        assert counts(optimized)[name] == best


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
    # At the top of the file (it has no RUN lines), on the function cut out, checked by FileCheck.
    prefix = "PASSPILOT-weighted_sum"
    assert new_lines[0] == f"; RUN: llvm-extract --func=weighted_sum -S %s | opt -passes='{passes}' -S | FileCheck %s --check-prefix={prefix}"
    assert new_lines[1] == f"; {prefix}: define {{{{.*}}}} @weighted_sum("
    assert new_lines[2:] == old_lines
    assert_run_line_passes(new, 0, hover_best(hover.contents.value))
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
    assert_tidy(TEXT, new)  # the loop metadata of the old body went with it

    result = await execute(client, "passpilot.insertPassList", {"uri": uri, "function": "checksum"})
    assert result["applied"] is True and result["passes"]
    newer = client.editor.text(uri)
    lines = newer.split("\n")
    assert lines[0] == f"; RUN: llvm-extract --func=checksum -S %s | opt -passes='{result['passes']}' -S | FileCheck %s --check-prefix=PASSPILOT-checksum"
    assert_verifies(newer)
    # A second function's RUN line goes after the first one (and its check line), not mid-file.
    result = await execute(client, "passpilot.insertPassList", {"uri": uri, "function": "grade"})
    assert result["applied"] is True
    lines = client.editor.text(uri).split("\n")
    assert lines[0].endswith("PASSPILOT-checksum") and lines[2].startswith("; RUN: llvm-extract --func=grade ")
    assert lines[3].startswith("; PASSPILOT-grade: ")
    assert_run_line_passes(client.editor.text(uri), 0)
    assert_run_line_passes(client.editor.text(uri), 2)

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
    assert_tidy(TEXT, new)
    client.editor.close(uri)


def block_kind(line: str) -> str:
    if line.startswith("attributes #"):
        return "attributes"
    if re.match(r"^!\d+ = ", line):
        return "metadata"
    return "declarations"


def assert_tidy(old: str, new: str) -> None:
    """What the rewrite appended comes once per kind (declarations, attribute groups, metadata), and no
    metadata node that the old text used is left unused."""
    old_lines = old.rstrip("\n").split("\n")
    new_lines = new.rstrip("\n").split("\n")
    tail = next(line for line in reversed(old_lines) if line in new_lines)  # the old end (orphans went)
    appended = new_lines[max(i for i, line in enumerate(new_lines) if line == tail) + 1 :]
    blocks, block = [], []
    for line in appended + [""]:
        if line.strip():
            block.append(line)
        elif block:
            blocks.append(block)
            block = []
    kinds = [block_kind(b[0]) for b in blocks if not b[0].startswith((" ", "}"))]
    assert len(kinds) == len(set(kinds)), blocks

    def used(text: str) -> set[str]:
        layout = ModuleLayout.from_text(text)
        roots = [text[e.start : e.end] for e in layout.entities if not (e.kind == "metadata" and e.token in layout.metadata)]
        pending = [m for code in roots for m in re.findall(r"!\d+", strip_comments(code))]
        seen = set()
        while pending:
            token = pending.pop()
            if token in layout.metadata and token not in seen:
                seen.add(token)
                pending += re.findall(r"!\d+", layout.metadata[token])
        return seen

    new_layout = ModuleLayout.from_text(new)
    left_behind = (used(old) - used(new)) & set(new_layout.metadata)
    assert not left_behind, sorted(left_behind)


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


async def hover_text(client, uri: str, text: str, name: str) -> str:
    line = define_line(text, name)
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=text.split("\n")[line].index(f"@{name}") + 2),
        )
    )
    return hover.contents.value if hover else ""


SAME = r"same results on 300 inputs( \(\d+ of them crash or hang in both\))?"


async def test_optimize_function_says_what_the_behaviour_check_found(client):
    """The rewrite is run against the original on 300 inputs (clang-22); the action and the hovers say so."""
    from lsp_server.compiler.behaviour import find_clang

    if find_clang() is None:
        pytest.skip("clang-22 is not installed")
    uri = "file:///virtual/edits/behaviour.ll"
    measured = await open_measured(client, uri)
    assert measured["grade"][2] < measured["grade"][1]  # PassPilot beats -Oz here: its own find is checked
    action = await code_action(client, uri, define_line(TEXT, "grade") + 5, "Optimize function")
    resolved = await client.code_action_resolve_async(action)
    assert re.fullmatch(rf"Optimize function \({SAME}\)", resolved.title), resolved.title
    if resolved.edit.change_annotations:  # clients that show a description for an edit
        (annotation,) = resolved.edit.change_annotations.values()
        assert annotation.label == "Optimize @grade" and re.fullmatch(SAME, annotation.description)
    before = await hover_text(client, uri, TEXT, "grade")
    assert re.search(rf"behaviour check of the rewrite: {SAME}", before), before
    assert client.editor.apply_workspace_edit(resolved.edit)
    new = client.editor.text(uri)
    assert_verifies(new)
    after = ""
    for _ in range(100):  # the server analyses the new text first
        after = await hover_text(client, uri, new, "grade")
        if "rewritten by PassPilot" in after:
            break
        await asyncio.sleep(0.1)
    assert re.search(rf"rewritten by PassPilot; behaviour check: {SAME}", after), after
    client.editor.close(uri)


@pytest.mark.parametrize("profile", ["visual-studio-code"])
async def test_a_miscompiling_opt_is_blocked_by_optimize_function(profile, tmp_path, miscompiling_opt):
    from lsp_server.compiler.behaviour import find_clang

    if find_clang() is None:
        pytest.skip("clang-22 is not installed")
    text = SMALL.read_text()
    uri = "file:///virtual/edits/miscompile.ll"
    settings = options(tmp_path / "cache", opt={"path": miscompiling_opt()}, compiler={"backend": "opt"})
    async with session(profile, settings) as client:
        client.editor.open(uri, text)
        await wait_for_hints(client, uri, text.count("\ndefine "))
        action = await code_action(client, uri, define_line(text, "sum_squares") + 3, "Optimize function")
        resolved = await client.code_action_resolve_async(action)
        assert re.fullmatch(
            r"Optimize function \(blocked: different results on input @sum_squares\(.*\) \(the pass list miscompiles this "
            r"function \(an LLVM bug, or a faulty opt\)\); -Oz was written instead\)",
            resolved.title,
        ), resolved.title
        hover = await hover_text(client, uri, text, "sum_squares")
        assert "behaviour check of the rewrite: blocked: different results on input @sum_squares(" in hover
        assert "rewrite: crashed" in hover  # the counterexample
        assert client.editor.apply_workspace_edit(resolved.edit)
        new = client.editor.text(uri)
        assert_verifies(new)
        layout = ModuleLayout.from_text(new)
        assert "unreachable" not in layout.function_text(layout.function("sum_squares"))
        assert counts(new)["sum_squares"] == counts(plain_oz(text, "sum_squares"))["sum_squares"]


def plain_oz(text: str, name: str) -> str:
    """The module with `name` as -Oz makes it (the real opt-22)."""
    from lsp_server.compiler import run_opt
    from lsp_server.engine import standalone_functions

    function = standalone_functions(text, [name])[1][0]
    return run_opt(find_opt(OPT), "default<Oz>", function.text).output
