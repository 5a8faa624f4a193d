"""What code actions and commands do: find the function, measure it, plan a verified edit, apply it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from ..engine import FunctionResult, Measurement, write_back
from ..ir import FunctionSpan, ModuleLayout, StandaloneFunction
from .behaviour import check_rewrite, check_rewrites
from .documents import Analysis, current_text, is_open, up_to_date
from .edits import (
    EditRefused,
    PlannedEdit,
    plan_function_rewrite,
    plan_run_line,
    result_summary,
    text_replacements,
    workspace_edit,
)
from .jobs import Job
from .positions import Positions

if TYPE_CHECKING:
    from ..server import PassPilotServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    uri: str
    analysis: Analysis
    span: FunctionSpan
    function: StandaloneFunction

    @property
    def name(self) -> str:
        return self.span.name


def command_argument(arguments: tuple[Any, ...]) -> dict[str, Any]:
    """The one argument object every server command takes (docs/design.md), or InvalidParams."""
    if len(arguments) != 1 or not isinstance(arguments[0], dict):
        raise JsonRpcInvalidParams("expected one argument object, e.g. {\"uri\": ..., \"function\": ...}")
    argument = arguments[0]
    if not isinstance(argument.get("uri"), str):
        raise JsonRpcInvalidParams("the argument object needs a `uri` string")
    return argument


def parse_mode(argument: dict[str, Any]) -> str:
    mode = argument.get("mode", "best") or "best"
    if mode not in ("best", "oz"):
        raise JsonRpcInvalidParams(f"`mode` must be \"best\" or \"oz\", got {mode!r}")
    return mode


async def valid_analysis(ls: PassPilotServer, uri: str) -> Analysis:
    state = await up_to_date(ls, uri)
    if state is None or state.latest is None:
        raise EditRefused(f"{uri} is not open in the editor; PassPilot changes only documents the editor has open")
    if not state.latest.valid:
        first = state.latest.errors[0]
        raise EditRefused(f"the document has errors (line {first.line + 1}: {first.message}); fix them first")
    return state.latest


async def resolve_target(ls: PassPilotServer, argument: dict[str, Any]) -> Target:
    """The function named by `function` or containing `position` in the document's current text."""
    uri = argument["uri"]
    analysis = await valid_analysis(ls, uri)
    name = argument.get("function")
    span = None
    if isinstance(name, str) and name:
        span = analysis.layout.function(name.lstrip("@")) or analysis.layout.function(name)
        if span is None:
            raise EditRefused(f"no function named @{name.lstrip('@')} is defined in this document")
    else:
        position = argument.get("position")
        if not isinstance(position, dict) or not isinstance(position.get("line"), int):
            raise JsonRpcInvalidParams("name the function with `function` or `position: {line, character}`")
        character = position.get("character") if isinstance(position.get("character"), int) else 0
        client = types.Position(line=max(position["line"], 0), character=max(character, 0))
        line, _ = Positions.of(ls, analysis.text, analysis.layout.lines).to_ir(client)
        span = analysis.layout.function_at(line)
        if span is None:
            raise EditRefused(f"line {position['line'] + 1} is not inside a function definition")
    function = analysis.functions.get(span.name)
    if function is None:
        raise EditRefused(f"@{span.name} could not be extracted from the module")
    return Target(uri, analysis, span, function)


def require_engine(ls: PassPilotServer) -> None:
    if not ls.engine.ready:
        raise EditRefused(ls.engine.error or "PassPilot's engine is still starting")


async def measured(ls: PassPilotServer, target: Target, job: Job) -> FunctionResult:
    require_engine(ls)
    return (await ls.measurements.measure([target.function], job))[0]


def _unchanged(ls: PassPilotServer, target_uri: str, text: str) -> None:
    if current_text(ls, target_uri)[0] != text:
        raise EditRefused("the document changed while PassPilot was working; nothing was changed, try again")


def rewritten_texts(old: ModuleLayout, new_text: str, names: list[str]) -> dict[str, tuple[str, str]]:
    """Blocking: each named function's text before and after a planned rewrite."""
    new = ModuleLayout.from_text(new_text)
    texts = {}
    for name in names:
        before, after = old.function(name), new.function(name)
        if before is not None and after is not None:
            texts[name] = (old.function_text(before), new.function_text(after))
    return texts


async def remember_rewrites(ls: PassPilotServer, analysis: Analysis, planned: PlannedEdit, written: list[tuple[FunctionResult, Measurement]], job: Job) -> None:
    """Keep the figures of functions as written before PassPilot rewrites them (session/measure.py
    `Rewrite`): hints show the new count at once, against an -Oz and best that do not move."""
    if not written:
        return
    texts = await job.run(rewritten_texts, analysis.layout, planned.new_text, [r.name for r, _ in written])
    for result, measurement in written:
        if result.name in texts and measurement.count is not None:
            ls.measurements.remember_rewrite(*texts[result.name], result, measurement.count)


async def plan_optimize(
    ls: PassPilotServer, target: Target, mode: str, job: Job, result: FunctionResult | None = None
) -> tuple[PlannedEdit, FunctionResult]:
    """The checked (session/behaviour.py), spliced and verified rewrite of a function, from `result`
    (a deep search's) or from its measurement."""
    found = result if result is not None else await measured(ls, target, job)
    result = await check_rewrite(ls, target, found, mode, job)
    optimizer = ls.engine.optimizer
    planned = await job.run(plan_function_rewrite, optimizer.opt, target.analysis.text, target.name, result, mode)
    _unchanged(ls, target.uri, target.analysis.text)
    if planned.measurement is not None:
        await remember_rewrites(ls, target.analysis, planned, [(result, planned.measurement)], job)
    return planned, result


async def plan_insert_pass_list(ls: PassPilotServer, target: Target, job: Job) -> tuple[PlannedEdit, str]:
    result = await measured(ls, target, job)
    best = result.best
    if best is None or not best.ok:
        raise EditRefused(f"no pass list succeeded on @{target.name}")
    planned = await job.run(plan_run_line, ls.engine.optimizer.opt, target.analysis.text, target.span, best.passes)
    _unchanged(ls, target.uri, target.analysis.text)
    return planned, best.passes


async def plan_optimize_module(ls: PassPilotServer, uri: str, job: Job) -> tuple[PlannedEdit, list[dict[str, Any]]]:
    analysis = await valid_analysis(ls, uri)
    require_engine(ls)
    functions = [analysis.functions[s.name] for s in analysis.layout.functions if s.name in analysis.functions]
    results = await check_rewrites(ls, analysis.text, await ls.measurements.measure(functions, job), job)  # session/behaviour.py
    optimizer = ls.engine.optimizer
    module = await job.run(write_back, optimizer, analysis.text, results, "best", follow_line_ends=True)  # in the document's line ends
    rows = []
    for outcome in module.outcomes:
        row = result_summary(outcome.result)
        row.update({"verified": outcome.verified, "applied": outcome.applied is not None, "reason": outcome.reason})
        rows.append(row)
    replacements = await job.run(text_replacements, analysis.text, module.text)  # module.text is what the engine verified
    _unchanged(ls, uri, analysis.text)
    planned = PlannedEdit(analysis.text, module.text, replacements)
    await remember_rewrites(ls, analysis, planned, [(o.result, o.applied) for o in module.outcomes if o.applied is not None], job)
    return planned, rows


@dataclass(frozen=True)
class Applied:
    """What became of an edit sent to the client: `reason` says why it was not applied."""

    applied: bool
    reason: str | None = None
    declined: bool = False  # the client said no (the user may have declined): nothing to warn about

    def fields(self) -> dict[str, Any]:
        return {"applied": True} if self.applied else {"applied": False, "reason": self.reason}


async def apply(ls: PassPilotServer, uri: str, planned: PlannedEdit, label: str) -> Applied:
    """Ask the client to apply a planned edit to the text it was planned on; report its answer."""
    if not is_open(ls.workspace, uri):
        return Applied(False, f"{uri} is not open in the editor (it was closed); nothing was changed")
    text, version = current_text(ls, uri)
    if text != planned.old_text:
        return Applied(False, "the document changed while PassPilot was working; nothing was changed, try again")
    if not planned.replacements:
        return Applied(True)
    if not ls.supports("workspace.apply_edit"):
        return Applied(False, "the editor does not accept edits from the server (workspace/applyEdit)")
    edit = workspace_edit(ls, uri, version, planned.old_text, planned.replacements)
    try:
        response = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=label))
    except Exception as error:  # noqa: BLE001 - the client answered with an error, or went away
        log.warning("workspace/applyEdit failed: %s", error)
        return Applied(False, f"the editor could not apply the edit: {error}")
    if getattr(response, "applied", False) is True:
        return Applied(True)
    failure = getattr(response, "failure_reason", None)
    log.info("the client did not apply the edit: %s", failure)
    reason = f"the editor did not apply the edit: {failure}" if failure else "the editor did not apply the edit"
    return Applied(False, reason, declined=True)


def refused_answer(ls: PassPilotServer, error: EditRefused, **fields: Any) -> dict[str, Any]:
    """A command's answer when it changed nothing: the reason is shown and returned."""
    ls.show_message(f"PassPilot: {error}", types.MessageType.Warning)
    return {"applied": False, "reason": str(error), **fields}


def outcome_answer(ls: PassPilotServer, outcome: Applied) -> dict[str, Any]:
    """A command's answer about its edit; a failure the user did not choose is shown."""
    if not outcome.applied and not outcome.declined:
        ls.show_message(f"PassPilot: {outcome.reason}", types.MessageType.Warning)
    return outcome.fields()
