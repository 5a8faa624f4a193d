"""Turning engine results into verified edits of a document.

Nothing here changes a document: it computes the new text, checks it with `opt -passes=verify`, and
describes the change as LSP text edits (the function's lines, plus anything appended at the end) that a
client applies. A rewrite that does not verify is refused with the reason.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ..compiler import OptTool, verify
from ..engine import FunctionResult, Measurement, choice
from ..ir import FunctionSpan, ModuleLayout, SpliceError, splice_function
from .positions import Columns

if TYPE_CHECKING:
    from ..server import PassPilotServer

RUN_LINE = re.compile(r"^;\s*RUN:\s*opt\b.*-passes=")


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
    """Blocking: splice the chosen candidate into `text`, verify the module, describe the edits."""
    measurement, reason = choice(result, mode)
    if measurement is None:
        raise EditRefused(f"@{span_name} was not rewritten: {reason}")
    layout = ModuleLayout.from_text(text)
    span = layout.function(span_name)
    if span is None:
        raise EditRefused(f"@{span_name} is no longer defined in the document")
    try:
        splice = splice_function(layout, span, result.function, measurement.output)
    except SpliceError as error:
        raise EditRefused(f"@{span_name} could not be put back into the module: {error}") from None
    new_text = splice.apply(text)
    checked = verify(opt, new_text)
    if not checked.ok:
        raise EditRefused(f"the rewritten module does not verify, nothing was changed: {checked.error}")
    lines = layout.lines
    replacements = [
        Replacement(splice.first_line, splice.first_column, splice.last_line, splice.last_column, splice.function_text)
    ]
    after_function = apply_replacements(text, tuple(replacements))
    if new_text != after_function:
        if new_text.startswith(after_function) and splice.last_line < len(lines) - 1:
            end_line = len(lines) - 1
            replacements.append(Replacement(end_line, len(lines[end_line]), end_line, len(lines[end_line]), new_text[len(after_function) :]))
        else:
            replacements = list(diff_replacements(text, new_text))
    planned = PlannedEdit(text, new_text, tuple(replacements), measurement, splice.function_text)
    if apply_replacements(text, planned.replacements) != new_text:  # never send an edit we did not check
        planned = PlannedEdit(text, new_text, tuple(diff_replacements(text, new_text)), measurement, splice.function_text)
    return planned


def plan_run_line(opt: OptTool, text: str, span: FunctionSpan, passes: str) -> PlannedEdit:
    """Blocking: a lit-style RUN line above the function (replacing one that is already there)."""
    run_line = f"; RUN: opt -passes='{passes}' -S %s"
    lines = text.split("\n")
    above = span.attrs_comment_line if span.attrs_comment_line is not None else span.start_line
    if above > 0 and RUN_LINE.match(lines[above - 1]):
        replacement = Replacement(above - 1, 0, above - 1, len(lines[above - 1]), run_line)
    else:
        replacement = Replacement(above, 0, above, 0, run_line + "\n")
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
    columns = Columns.of(ls)
    lines = old_text.split("\n")
    edits = [
        types.TextEdit(
            range=types.Range(
                start=columns.position(lines, r.start_line, r.start_col),
                end=columns.position(lines, r.end_line, r.end_col),
            ),
            new_text=r.text,
        )
        for r in replacements
    ]
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
