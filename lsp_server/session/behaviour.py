"""The engine's behaviour check for "Optimize function" and "Optimize module", and what hovers show of it.

The check itself lives in `engine.behaviour`; this module runs it in a job thread and remembers each verdict
by the standalone text of the function it was made for and of the function written in its place, so that a
hover shows "same results on 300 inputs" both before and after the edit is applied.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..engine import FunctionResult, Optimizer, standalone_functions
from ..engine.behaviour import BehaviourVerdict, RewriteChecker, checked_results, spliced_module
from ..ir import StandaloneFunction
from .jobs import Job

if TYPE_CHECKING:
    from ..server import PassPilotServer
    from .operations import Target

log = logging.getLogger(__name__)

MAX_VERDICTS = 2000


class BehaviourVerdicts:
    """Verdicts by standalone function text, and the checker that makes them (one per engine)."""

    def __init__(self) -> None:
        self._verdicts: OrderedDict[str, tuple[BehaviourVerdict, bool]] = OrderedDict()  # text -> (verdict, rewritten)
        self._checker: RewriteChecker | None = None

    def checker(self, optimizer: Optimizer) -> RewriteChecker:
        if self._checker is None or self._checker.optimizer is not optimizer:
            if self._checker is not None:
                self._checker.close()
            self._checker = RewriteChecker(optimizer)
        return self._checker

    def remember(self, function_text: str, verdict: BehaviourVerdict, rewritten: bool) -> None:
        self._verdicts[function_text] = (verdict, rewritten)
        self._verdicts.move_to_end(function_text)
        while len(self._verdicts) > MAX_VERDICTS:
            self._verdicts.popitem(last=False)

    def of(self, function: StandaloneFunction) -> tuple[BehaviourVerdict, bool] | None:
        """The verdict for this function, and whether the function is the rewrite that was written."""
        return self._verdicts.get(function.text)

    def close(self) -> None:
        if self._checker is not None:
            self._checker.close()
        self._checker = None


def verdicts(ls: PassPilotServer) -> BehaviourVerdicts:
    """The server's verdicts (created with the first check)."""
    store = getattr(ls, "behaviour_verdicts", None)
    if store is None:
        store = BehaviourVerdicts()
        ls.behaviour_verdicts = store
    return store


async def check_rewrite(ls: PassPilotServer, target: Target, result: FunctionResult, mode: str, job: Job) -> FunctionResult:
    """Check what would be written for one function; the result to write (a blocked best replaced)."""
    optimizer = ls.engine.optimizer
    if optimizer is None:
        return result
    store = verdicts(ls)
    job.set_message("checking the rewrite on random inputs")
    verdict = await job.run(store.checker(optimizer).verdict, target.analysis.text, result, mode, cancel=job.cancel)
    store.remember(target.function.text, verdict, False)
    written = await job.run(_written_function, target.analysis.text, result, verdict)
    if written is not None:
        store.remember(written, verdict, True)
    return checked_results([result], [verdict])[0]


async def check_rewrites(ls: PassPilotServer, text: str, results: list[FunctionResult], job: Job) -> list[FunctionResult]:
    """`check_rewrite` for every function of a module (in parallel)."""
    optimizer = ls.engine.optimizer
    if optimizer is None:
        return results
    store = verdicts(ls)
    job.set_message("checking the rewrites on random inputs")
    found = await job.run(store.checker(optimizer).verdicts, text, results, "best", cancel=job.cancel)
    for result, verdict in zip(results, found):
        store.remember(result.function.text, verdict, False)
    return checked_results(results, found)


def _written_function(text: str, result: FunctionResult, verdict: BehaviourVerdict) -> str | None:
    """Blocking: the standalone text of the function as the verdict writes it."""
    if verdict.write is None:
        return None
    try:
        spliced = spliced_module(text, result, verdict.write, follow_line_ends=True)  # as it is written
        if spliced is None:
            return None
        _, functions = standalone_functions(spliced, [result.name])
        return functions[0].text if functions else None
    except Exception:  # noqa: BLE001 - only a hover depends on it
        log.debug("could not extract the rewritten @%s", result.name, exc_info=True)
        return None
