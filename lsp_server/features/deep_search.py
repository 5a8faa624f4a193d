""""Optimize function (deep search)": the engine's time-bounded search (engine/deep.py) on one function,
with progress (candidates tried, best so far) and cancellation, then the same checked, spliced and
verified write as "Optimize function".

Cancelling stops the search and changes nothing; the best list found so far is kept as the function's
figures (hints, hover), so a plain "Optimize function" afterwards writes it without searching again.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled

from ..engine import Cancelled, Optimizer
from ..engine.deep import DeepOptions, DeepResult, DeepSearch
from ..ir import StandaloneFunction
from ..session.edits import EditRefused, result_summary
from ..session.jobs import Job
from ..session.operations import Target, command_argument, apply, outcome_answer, plan_optimize, refused_answer, require_engine, resolve_target
from .inlay_hints import change_text

if TYPE_CHECKING:
    from ..server import PassPilotServer

DEEP_OPTIMIZE_FUNCTION = "passpilot.deepOptimizeFunction"
TITLE = "Optimize function (deep search)"


def register(server: PassPilotServer) -> None:
    server.command(DEEP_OPTIMIZE_FUNCTION)(deep_optimize_function)


def search_seconds(ls: PassPilotServer, argument: dict[str, Any]) -> float:
    """`seconds` of the argument object, else the `deepSearch.seconds` setting."""
    seconds = argument.get("seconds", ls.settings.deep_search.seconds)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
        raise JsonRpcInvalidParams(f"`seconds` must be a number of seconds from 0 to 3600, got {seconds!r}")
    return float(seconds)


def progress_message(tried: int, best: int, oz: int | None, elapsed: float, seconds: float) -> str:
    """"1,234 candidates · best 28 (−12.5% vs -Oz) · 4/10 s": what the progress shows after each batch."""
    against = f" ({change_text(best, oz)} vs -Oz)" if oz else ""
    return f"{tried:,} candidates · best {best}{against} · {min(elapsed, seconds):.0f}/{seconds:g} s"


def _search(
    optimizer: Optimizer, function: StandaloneFunction, seconds: float, cancel: threading.Event, progress, done
) -> DeepResult:
    """Blocking: the search; `done` gets its result even when the job stopped waiting (cancel)."""
    with DeepSearch(optimizer, DeepOptions(seconds=seconds)) as deep:
        result = deep.search(function, cancel=cancel, progress=progress)
    done(result)
    return result


async def run_deep_search(ls: PassPilotServer, target: Target, seconds: float, job: Job) -> DeepResult:
    """Search, reporting progress; the result (also a cancelled search's best so far) becomes the
    function's figures."""
    require_engine(ls)
    optimizer = ls.engine.optimizer
    loop = asyncio.get_running_loop()
    known = ls.measurements.get(target.function)
    oz = known.oz.count if known is not None and known.oz.ok else None
    steps = max(1, int(seconds * 10))

    def progress(tried: int, best: int, elapsed: float) -> None:
        job.report(min(steps, int(elapsed * 10)), steps, progress_message(tried, best, oz, elapsed, seconds))

    generation = ls.engine.generation

    def done(result: DeepResult) -> None:  # before `job.run` returns, or after it stopped waiting
        loop.call_soon_threadsafe(ls.measurements.remember_search, target.function, result, generation)

    job.report(0, steps, f"measuring -Oz and the starting lists · 0/{seconds:g} s")
    result = await job.run(_search, optimizer, target.function, seconds, job.cancel, progress, done)
    job.message = f"{result.tried:,} candidates in {result.seconds:.1f} s ({result.stopped})"
    return result


async def deep_optimize_function(ls, *arguments: Any) -> dict[str, Any]:
    """`passpilot.deepOptimizeFunction {uri, function | position, seconds?}` (`ls` is not annotated:
    pygls resolves a command handler's annotations at run time, where the server class is not imported)."""
    argument = command_argument(arguments)
    seconds = search_seconds(ls, argument)
    try:
        target = await resolve_target(ls, argument)
        async with Job(ls, f"PassPilot: deep search of @{target.name}") as job:
            try:
                result = await run_deep_search(ls, target, seconds, job)
                planned, checked = await plan_optimize(ls, target, "best", job, result)
            except Cancelled:
                raise JsonRpcRequestCancelled("deep search cancelled; the document is unchanged") from None
        summary = result_summary(checked)
        measurement = planned.measurement
        summary.update({"passes": measurement.passes, "source": measurement.source, "search": result.search_figures()})
        outcome = await apply(ls, target.uri, planned, f"Optimize @{target.name} (deep search)")
        return {**outcome_answer(ls, outcome), **summary}
    except EditRefused as error:
        return refused_answer(ls, error, function=argument.get("function"))
