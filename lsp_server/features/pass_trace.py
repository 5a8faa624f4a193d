"""The pass explorer over LSP: `passpilot/passTrace`, `passpilot/minimizePassList` and the command
`passpilot.showPassTrace` (docs/design.md).

Each names the document (`uri`), the function (`function` name or a `position` inside it) and optionally
a pass list (`passes`; default: the best list measured for the function). They run as cancellable jobs
with work-done progress; `$/cancelRequest` answers the request with `RequestCancelled` at once.
`passpilot.showPassTrace` writes the trace as a text document (a file under the cache folder) and asks
the client to show it with `window/showDocument`, so any editor that can open a file shows it.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled

from ..engine import Cancelled, default_cache_dir
from ..engine.trace import Minimized, PassTrace, TraceError, minimize_passes, trace_passes
from ..session.edits import EditRefused
from ..session.jobs import Job
from ..session.operations import Target, measured, require_engine, resolve_target

if TYPE_CHECKING:
    from ..server import PassPilotServer

PASS_TRACE = "passpilot/passTrace"
MINIMIZE_PASS_LIST = "passpilot/minimizePassList"
SHOW_PASS_TRACE = "passpilot.showPassTrace"
REQUEST_FAILED = -32803  # LSP's RequestFailed: the request was valid but could not be carried out


def register(server: PassPilotServer) -> None:
    server.feature(PASS_TRACE)(pass_trace)
    server.feature(MINIMIZE_PASS_LIST)(minimize_pass_list)
    server.command(SHOW_PASS_TRACE)(show_pass_trace)


def _plain(value: Any) -> Any:
    """Parameters of a method lsprotocol does not know arrive as named tuples: make them JSON-like."""
    if hasattr(value, "_asdict"):
        return {key: _plain(item) for key, item in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _argument(params: Any) -> dict[str, Any]:
    argument = _plain(params)
    if isinstance(argument, list) and len(argument) == 1:
        argument = argument[0]
    if not isinstance(argument, dict) or not isinstance(argument.get("uri"), str):
        raise JsonRpcInvalidParams('expected {"uri": ..., "function": ... or "position": {...}, "passes"?: ...}')
    passes = argument.get("passes")
    if passes is not None and not isinstance(passes, str):
        raise JsonRpcInvalidParams("`passes` must be a pass list string, e.g. \"sroa,instcombine\"")
    return argument


class _Failed(JsonRpcException):
    CODE = REQUEST_FAILED


async def _chosen_passes(ls: PassPilotServer, target: Target, argument: dict[str, Any], job: Job) -> tuple[str, dict[str, Any]]:
    """The list to explore and what is known about it: the one given, or the best one measured."""
    require_engine(ls)
    given = argument.get("passes")
    if given:
        return given, {"source": "given"}
    result = await measured(ls, target, job)
    best = result.best
    if best is None or not best.ok:
        raise EditRefused(f"no pass list succeeded on @{target.name}")
    return best.passes, {"source": best.source, "best": best.count, "oz": result.oz.count}


async def _trace(ls: PassPilotServer, argument: dict[str, Any]) -> tuple[PassTrace, dict[str, Any]]:
    target = await resolve_target(ls, argument)
    async with Job(ls, f"PassPilot: tracing the passes of @{target.name}") as job:
        try:
            passes, known = await _chosen_passes(ls, target, argument, job)
            job.set_message("running the passes")
            trace = await job.run(
                trace_passes,
                ls.engine.optimizer,
                target.function,
                passes,
                cancel=job.cancel,
                progress=lambda done, total: job.report(done, total, f"counting the IR after step {done + 1} of {total}"),
            )
        except Cancelled:
            raise JsonRpcRequestCancelled("the pass trace was cancelled") from None
    return trace, known


def trace_json(trace: PassTrace, known: dict[str, Any]) -> dict[str, Any]:
    return {
        "function": trace.function,
        "passes": trace.passes,
        **known,
        "original": trace.original,
        "original_ir": trace.original_ir,
        "final": trace.final,
        "folded": trace.folded,
        "steps": [
            {"name": step.pass_name, "target": step.target, "count": step.count, "diff": step.diff, "ir": step.ir}
            for step in trace.steps
        ],
    }


async def pass_trace(ls: PassPilotServer, params: Any) -> dict[str, Any]:
    """`{function, passes, source, steps: [{name, target, count, diff, ir}], folded, original, final, …}`"""
    argument = _argument(params)
    try:
        trace, known = await _trace(ls, argument)
    except (EditRefused, TraceError) as error:
        raise _Failed(str(error)) from None
    return trace_json(trace, known)


def minimized_json(minimized: Minimized, known: dict[str, Any]) -> dict[str, Any]:
    return {
        "function": minimized.function,
        "passes": minimized.passes,
        **known,
        "minimized": minimized.minimized,
        "count": minimized.count,
        "removed": list(minimized.removed),
        "measured": minimized.measured,
    }


async def minimize_pass_list(ls: PassPilotServer, params: Any) -> dict[str, Any]:
    """`{function, passes, minimized, count, removed, measured, …}`: the shortest sub-list with the same count."""
    argument = _argument(params)
    try:
        target = await resolve_target(ls, argument)
        async with Job(ls, f"PassPilot: minimizing the pass list of @{target.name}") as job:
            try:
                passes, known = await _chosen_passes(ls, target, argument, job)
                job.set_message("dropping passes one at a time")
                minimized = await job.run(
                    minimize_passes,
                    ls.engine.optimizer,
                    target.function,
                    passes,
                    cancel=job.cancel,
                    progress=lambda done, total: job.report(done, total, f"tried dropping {done} of {total} passes"),
                )
            except Cancelled:
                raise JsonRpcRequestCancelled("the minimization was cancelled") from None
    except (EditRefused, TraceError) as error:
        raise _Failed(str(error)) from None
    return minimized_json(minimized, known)


def traces_dir(ls: PassPilotServer) -> Path:
    """Where shown traces are written: `traces/` in the result cache's folder (the setting or the default)."""
    setting = ls.settings.cache.dir
    return (Path(setting).expanduser() if setting else default_cache_dir()) / "traces"


def write_trace(directory: Path, trace: PassTrace) -> Path:
    """The trace as `<function>.passes.diff` (diff syntax colours the steps), written atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^-\w.$]", "_", trace.function)[:100] or "function"
    path = directory / f"{safe}.passes.diff"
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".trace-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(trace.as_text())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


async def show_pass_trace(ls, *arguments: Any) -> dict[str, Any]:
    """Write the trace as a document and ask the client to show it; answers `{shown, uri, text, …}`."""
    argument = _argument(list(arguments))
    try:
        trace, known = await _trace(ls, argument)
        path = await ls.run_sync(write_trace, traces_dir(ls), trace)
    except (EditRefused, TraceError, OSError) as error:
        ls.show_message(f"PassPilot: {error}", types.MessageType.Warning)
        return {"shown": False, "reason": str(error), "function": argument.get("function")}
    shown = False
    if ls.supports("window.show_document.support"):
        try:
            result = await ls.window_show_document_async(types.ShowDocumentParams(uri=path.as_uri(), take_focus=True))
            shown = bool(getattr(result, "success", False))
        except Exception:  # noqa: BLE001 - the client could not show it; the text is in the answer
            shown = False
    return {
        "shown": shown,
        "uri": path.as_uri(),
        "function": trace.function,
        "passes": trace.passes,
        **known,
        "original": trace.original,
        "final": trace.final,
        "steps": len(trace.steps),
        "folded": trace.folded,
        "text": trace.as_text(),
    }
