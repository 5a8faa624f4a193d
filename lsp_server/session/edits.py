"""Turning engine results into verified edits of a document.

Nothing here changes a document. A rewrite is spliced and verified by the engine (`engine.module.
splice_verified`, the one splice-and-verify path); this module describes the change as LSP text edits
(the function's lines, plus anything appended at the end) that a client applies, and refuses, with the
engine's reason, a rewrite that did not verify.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ..compiler import OptTool, verify
from ..engine import FunctionOutcome, FunctionResult, Measurement, choice, splice_verified
from ..engine.module import uses_crlf
from ..ir import FunctionSpan, ModuleLayout
from .positions import Edit, Positions

if TYPE_CHECKING:
    from ..server import PassPilotServer

RUN_LINE_ANY = re.compile(r"^;\s*RUN:")


class EditRefused(Exception):
    """The change cannot be made; the message says why (shown to the user)."""


@dataclass(frozen=True)
class Replacement:
    """Replace code-point range (start_line, start_col)-(end_line, end_col) of the old text with `text`."""

    start_line: int
    start_col: int
    end_line: int
    end_col: int
    text: str


@dataclass(frozen=True)
class PlannedEdit:
    old_text: str
    new_text: str
    replacements: tuple[Replacement, ...]
    measurement: Measurement | None = None
    function_text: str | None = None  # the new text of the function (previews)


def apply_replacements(text: str, replacements: tuple[Replacement, ...]) -> str:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    def offset(line: int, col: int) -> int:
        return min(offsets[line] + col, len(text)) if line < len(lines) else len(text)

    result, cursor = [], 0
    for r in sorted(replacements, key=lambda r: (r.start_line, r.start_col)):
        start, end = offset(r.start_line, r.start_col), offset(r.end_line, r.end_col)
        result.append(text[cursor:start])
        result.append(r.text)
        cursor = end
    result.append(text[cursor:])
    return "".join(result)


def plan_function_rewrite(opt: OptTool, text: str, span_name: str, result: FunctionResult, mode: str) -> PlannedEdit:
    """Blocking: the chosen candidate spliced into `text` and verified by the engine (`splice_verified`,
    in the document's line ends), described as edits: the function's lines, plus anything appended at
    the end (or, when orphaned metadata went too, the differing lines)."""
    measurement, reason = choice(result, mode)
    if measurement is None:
        raise EditRefused(f"@{span_name} was not rewritten: {reason}")
    module = splice_verified(opt, text, [(result, measurement)], follow_line_ends=True)
    (outcome,) = module.outcomes
    if outcome.applied is None:
        raise EditRefused(_refusal(span_name, outcome))
    replacements, function_text = function_replacements(text, module.text, span_name)
    return PlannedEdit(text, module.text, replacements, measurement, function_text)


def _refusal(name: str, outcome: FunctionOutcome) -> str:
    if outcome.failure == "missing":
        return f"@{name} is no longer defined in the document"
    if outcome.failure == "splice":
        return f"@{name} could not be put back into the module: {outcome.error}"
    if outcome.failure == "verify":
        return f"the rewritten module does not verify, nothing was changed: {outcome.error}"
    return f"@{name} was not rewritten: {outcome.reason}"


def function_replacements(old: str, new: str, name: str) -> tuple[tuple[Replacement, ...], str | None]:
    """Blocking: the edit that turns `old` into `new` when `new` rewrites function `name`: its lines
    (with the `; Function Attrs:` line) replaced, and what was appended added at the end; the differing
    lines when that does not give `new`. Also the function's new text."""
    old_layout, new_layout = ModuleLayout.from_text(old), ModuleLayout.from_text(new)
    before, after = old_layout.function(name), new_layout.function(name)
    if before is None or after is None:
        return text_replacements(old, new), None
    function_text = new[_first_offset(new_layout, after) : after.end]
    first, last = old_layout.position(_first_offset(old_layout, before)), old_layout.position(before.end)
    replacements = [Replacement(*first, *last, function_text)]
    after_function = apply_replacements(old, tuple(replacements))
    lines = old_layout.lines
    if new != after_function:
        if new.startswith(after_function) and last[0] < len(lines) - 1:
            end_line = len(lines) - 1
            replacements.append(Replacement(end_line, len(lines[end_line]), end_line, len(lines[end_line]), new[len(after_function) :]))
        else:
            return text_replacements(old, new), function_text
    if apply_replacements(old, tuple(replacements)) != new:
        return text_replacements(old, new), function_text
    return tuple(replacements), function_text


def _first_offset(layout: ModuleLayout, span: FunctionSpan) -> int:
    """Where the function's text starts: its `; Function Attrs:` line, if it has one."""
    return layout.position_offset(span.attrs_comment_line, 0) if span.attrs_comment_line is not None else span.start


def text_replacements(old: str, new: str) -> tuple[Replacement, ...]:
    """The differing lines of two texts as replacements of the old one (they rebuild `new` exactly: the
    text the engine verified is the text the client gets)."""
    replacements = tuple(diff_replacements(old, new))
    if apply_replacements(old, replacements) != new:
        raise EditRefused("PassPilot could not describe the rewrite as edits of the document; nothing was changed")
    return replacements


def run_lines(name: str, passes: str) -> tuple[str, str]:
    """A lit RUN line for a list measured on one function, and the check line it needs.

    The list was measured on the function cut out of the module, and passes such as `inline`,
    `mergefunc` or `globaldce` act on the whole module; `opt` has no option to run a pipeline on one
    function. So the RUN line cuts the function out with `llvm-extract` first: it then runs the list on
    what PassPilot measured. FileCheck needs a check: the function's own prefix (so that RUN lines of
    other functions, and the file's own CHECK lines, do not check each other's output) checks that the
    function is defined in the output.
    """
    prefix = "PASSPILOT-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)
    func = shlex.quote(name)
    run = f"; RUN: llvm-extract --func={func} -S %s | opt -passes='{passes}' -S | FileCheck %s --check-prefix={prefix}"
    check = f"; {prefix}: define {{{{.*}}}} @{name if re.fullmatch(r'[-a-zA-Z$._][-a-zA-Z$._0-9]*', name) else chr(34) + name + chr(34)}("
    return run, check


def plan_run_line(opt: OptTool, text: str, span: FunctionSpan, passes: str) -> PlannedEdit:
    """Blocking: a lit RUN line for the function at the top of the file, after the RUN lines already
    there (replacing PassPilot's earlier one for the same function)."""
    run, check = run_lines(span.name, passes)
    lines = text.split("\n")
    newline = "\r\n" if uses_crlf(text) else "\n"
    prefix_marker = f"--check-prefix={run.rsplit('=', 1)[1]}"
    ours = next((n for n, line in enumerate(lines) if RUN_LINE_ANY.match(line) and line.rstrip("\r").endswith(prefix_marker)), None)
    if ours is not None:
        end = len(lines[ours]) - (1 if lines[ours].endswith("\r") else 0)
        replacement = Replacement(ours, 0, ours, end, run)
    else:
        # After the leading comment block's last RUN line (and its check line), else at the very top.
        last = None
        for n, line in enumerate(lines):
            if not line.lstrip().startswith(";") and line.strip():
                break
            if RUN_LINE_ANY.match(line):
                last = n
        at = 0 if last is None else last + 1
        while at < len(lines) and re.match(r"^;\s*PASSPILOT-[\w-]*:", lines[at]):
            at += 1
        replacement = Replacement(at, 0, at, 0, run + newline + check + newline)
    new_text = apply_replacements(text, (replacement,))
    checked = verify(opt, new_text)
    if not checked.ok:
        raise EditRefused(f"the module does not verify with the RUN line, nothing was changed: {checked.error}")
    return PlannedEdit(text, new_text, (replacement,))


def diff_replacements(old: str, new: str) -> list[Replacement]:
    """Line-level differences between two texts as replacements of the old one."""
    old_lines = old.split("\n")
    new_lines = new.split("\n")
    old_keep = [line + "\n" for line in old_lines[:-1]] + [old_lines[-1]]
    new_keep = [line + "\n" for line in new_lines[:-1]] + [new_lines[-1]]
    matcher = difflib.SequenceMatcher(None, old_keep, new_keep, autojunk=len(old_keep) > 2000)
    replacements = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start = (i1, 0)
        if i2 < len(old_lines):
            end = (i2, 0)
        else:
            end = (len(old_lines) - 1, len(old_lines[-1]))
        replacements.append(Replacement(start[0], start[1], end[0], end[1], "".join(new_keep[j1:j2])))
    return replacements


def workspace_edit(ls: PassPilotServer, uri: str, version: int | None, old_text: str, replacements) -> types.WorkspaceEdit:
    positions = Positions.of(ls, old_text)
    edits = positions.text_edits(
        [Edit(positions.offset(r.start_line, r.start_col), positions.offset(r.end_line, r.end_col), r.text) for r in replacements]
    )
    if ls.supports("workspace.workspace_edit.document_changes"):
        return types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version), edits=edits
                )
            ]
        )
    return types.WorkspaceEdit(changes={uri: edits})


def result_summary(result: FunctionResult) -> dict[str, Any]:
    return {"function": result.name, **result.figures()}
