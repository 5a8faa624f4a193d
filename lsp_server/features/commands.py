"""Server commands (`workspace/executeCommand`), as in docs/design.md.

Each takes one argument object naming the document (`uri`) and, for function commands, the function
(`function` name or a `position` inside it). Edits go to the client with `workspace/applyEdit` only after
the rewritten module verified. When an edit cannot be made the command answers `applied: false` with a
`reason` (and shows it); a cancelled command answers the LSP `RequestCancelled` error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcRequestCancelled

from ..engine import Cancelled
from ..session.edits import EditRefused, result_summary
from ..session.jobs import Job
from ..session.operations import (
    command_argument,
    apply,
    outcome_answer,
    parse_mode,
    plan_insert_pass_list,
    plan_optimize,
    plan_optimize_module,
    refused_answer,
    resolve_target,
)

if TYPE_CHECKING:
    from ..server import PassPilotServer

OPTIMIZE_FUNCTION = "passpilot.optimizeFunction"
INSERT_PASS_LIST = "passpilot.insertPassList"
OPTIMIZE_MODULE = "passpilot.optimizeModule"
PREVIEW_FUNCTION = "passpilot.previewFunction"


def register(server: PassPilotServer) -> None:
    server.command(OPTIMIZE_FUNCTION)(optimize_function)
    server.command(INSERT_PASS_LIST)(insert_pass_list)
    server.command(OPTIMIZE_MODULE)(optimize_module)
    server.command(PREVIEW_FUNCTION)(preview_function)


async def _plan_function(ls, argument: dict[str, Any], cancelled: str):
    """The function an argument names and its planned rewrite, under a cancellable progress job."""
    target = await resolve_target(ls, argument)
    async with Job(ls, f"PassPilot: optimizing @{target.name}") as job:
        try:
            planned, result = await plan_optimize(ls, target, parse_mode(argument), job)
        except Cancelled:
            raise JsonRpcRequestCancelled(cancelled) from None
    return target, planned, result


async def optimize_function(ls, *arguments: Any) -> dict[str, Any]:
    argument = command_argument(arguments)
    try:
        target, planned, result = await _plan_function(ls, argument, "optimization cancelled; the document is unchanged")
        summary = result_summary(result)
        measurement = planned.measurement
        summary.update({"passes": measurement.passes, "source": measurement.source})
        outcome = await apply(ls, target.uri, planned, f"Optimize @{target.name}")
        return {**outcome_answer(ls, outcome), **summary}
    except EditRefused as error:
        return refused_answer(ls, error, function=argument.get("function"))


async def insert_pass_list(ls, *arguments: Any) -> dict[str, Any]:
    argument = command_argument(arguments)
    try:
        target = await resolve_target(ls, argument)
        async with Job(ls, f"PassPilot: measuring @{target.name}") as job:
            try:
                planned, passes = await plan_insert_pass_list(ls, target, job)
            except Cancelled:
                raise JsonRpcRequestCancelled("measurement cancelled; the document is unchanged") from None
        outcome = await apply(ls, target.uri, planned, f"RUN line for @{target.name}")
        return {**outcome_answer(ls, outcome), "passes": passes}
    except EditRefused as error:
        return refused_answer(ls, error, passes=None)


async def optimize_module(ls, *arguments: Any) -> dict[str, Any]:
    argument = command_argument(arguments)
    uri = argument["uri"]
    try:
        async with Job(ls, "PassPilot: optimizing the module") as job:
            try:
                planned, rows = await plan_optimize_module(ls, uri, job)
            except Cancelled:
                raise JsonRpcRequestCancelled("optimization cancelled; the document is unchanged") from None
        outcome = await apply(ls, uri, planned, "Optimize module")
        return {**outcome_answer(ls, outcome), "functions": rows}
    except EditRefused as error:
        return refused_answer(ls, error, functions=[])


async def preview_function(ls, *arguments: Any) -> dict[str, Any]:
    argument = command_argument(arguments)
    try:
        target, planned, result = await _plan_function(ls, argument, "preview cancelled")
    except EditRefused as error:
        return refused_answer(ls, error, function=argument.get("function"))
    layout = target.analysis.layout
    span = target.span
    first = layout.position_offset(span.attrs_comment_line, 0) if span.attrs_comment_line is not None else span.start
    summary = result_summary(result)
    summary.update(
        {
            "passes": planned.measurement.passes,
            "source": planned.measurement.source,
            "original_text": layout.text[first : span.end],
            "optimized_text": planned.function_text,
        }
    )
    return summary
