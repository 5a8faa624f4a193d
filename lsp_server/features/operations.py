"""What code actions and commands do: find the function, measure it, plan a verified edit, apply it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from ..engine import FunctionResult, write_back
from ..ir import FunctionSpan, StandaloneFunction
from .documents import Analysis, current_text, up_to_date
from .edits import EditRefused, PlannedEdit, diff_replacements, plan_function_rewrite, plan_run_line, result_summary
from .jobs import Job

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


def _argument(arguments: tuple[Any, ...]) -> dict[str, Any]:
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
        raise EditRefused(f"{uri} is not open")
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
        span = analysis.layout.function_at(position["line"])
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


async def plan_optimize(ls: PassPilotServer, target: Target, mode: str, job: Job) -> tuple[PlannedEdit, FunctionResult]:
    result = await measured(ls, target, job)
    optimizer = ls.engine.optimizer
    planned = await job.run(plan_function_rewrite, optimizer.opt, target.analysis.text, target.name, result, mode)
    _unchanged(ls, target.uri, target.analysis.text)
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
    results = await ls.measurements.measure(functions, job)
    optimizer = ls.engine.optimizer
    module = await job.run(write_back, optimizer, analysis.text, results, "best")
    rows = []
    for outcome in module.outcomes:
        row = result_summary(outcome.result)
        row.update({"verified": outcome.verified, "applied": outcome.applied is not None, "reason": outcome.reason})
        rows.append(row)
    replacements = await job.run(diff_replacements, analysis.text, module.text)
    _unchanged(ls, uri, analysis.text)
    return PlannedEdit(analysis.text, module.text, tuple(replacements)), rows


async def apply(ls: PassPilotServer, uri: str, version: int | None, planned: PlannedEdit, label: str) -> bool:
    """Ask the client to apply a planned edit; True when it did."""
    from .edits import workspace_edit

    if not planned.replacements:
        return True
    edit = workspace_edit(ls, uri, version, planned.old_text, planned.replacements)
    try:
        response = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=label))
    except Exception as error:  # noqa: BLE001
        log.warning("workspace/applyEdit failed: %s", error)
        return False
    applied = bool(getattr(response, "applied", False))
    if not applied:
        log.info("the client did not apply the edit: %s", getattr(response, "failure_reason", None))
    return applied
