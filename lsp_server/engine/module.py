"""Optimizing functions inside a module and writing the winners back.

Every function not optimized stays byte-identical. The rewritten module must pass `opt -passes=verify`;
if it does not, functions are spliced one at a time and any that breaks verification is left as written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ..compiler import verify
from ..ir import ModuleLayout, SpliceError, StandaloneFunction, parse, splice_function, standalone_function
from .optimizer import FunctionResult, Measurement, Optimizer, Progress

log = logging.getLogger(__name__)


class UnknownFunction(LookupError):
    pass


@dataclass(frozen=True)
class FunctionOutcome:
    result: FunctionResult
    applied: Measurement | None  # what was written back, if anything
    verified: bool
    reason: str | None = None  # why nothing was written back


@dataclass(frozen=True)
class ModuleOptimization:
    text: str
    outcomes: tuple[FunctionOutcome, ...]


def standalone_functions(text: str, names: Sequence[str] | None = None) -> tuple[ModuleLayout, list[StandaloneFunction]]:
    """Parse and verify the module (raising InvalidIR), then cut out the requested functions."""
    parse(text)
    layout = ModuleLayout.from_text(text)
    if names:
        spans = []
        for name in names:
            span = layout.function(name)
            if span is None:
                raise UnknownFunction(f"no function named @{name.lstrip('@')} is defined in this module")
            spans.append(span)
    else:
        spans = list(layout.functions)
    return layout, [standalone_function(layout, span) for span in spans]


def choice(result: FunctionResult, mode: str = "best") -> tuple[Measurement | None, str | None]:
    """What to write back for a function, or why nothing should be."""
    picked = result.oz if mode == "oz" else result.best
    if picked is None or not picked.ok:
        return None, (picked.error if picked is not None else "no candidate succeeded")
    if mode != "oz" and picked.count > result.original:
        return None, f"already smaller ({result.original}) than the best candidate ({picked.count})"
    return picked, None


def write_back(optimizer: Optimizer, text: str, results: Sequence[FunctionResult], mode: str = "best") -> ModuleOptimization:
    picks = [(result, *choice(result, mode)) for result in results]
    candidate_text, failures = _splice_all(text, [(r, m) for r, m, _ in picks if m is not None])
    check = verify(optimizer.opt, candidate_text)
    if check.ok and not failures:
        outcomes = [FunctionOutcome(r, m, m is not None, reason) for r, m, reason in picks]
        return ModuleOptimization(candidate_text, tuple(outcomes))
    log.warning("module did not verify after splicing all functions (%s); splicing one at a time", check.error)
    current = text
    outcomes = []
    for result, measurement, reason in picks:
        if measurement is None:
            outcomes.append(FunctionOutcome(result, None, False, reason))
            continue
        attempt, failed = _splice_all(current, [(result, measurement)])
        if not failed and verify(optimizer.opt, attempt).ok:
            current = attempt
            outcomes.append(FunctionOutcome(result, measurement, True))
        else:
            outcomes.append(FunctionOutcome(result, None, False, "the rewritten module did not verify"))
    return ModuleOptimization(current, tuple(outcomes))


def _splice_all(text: str, picks: list[tuple[FunctionResult, Measurement]]) -> tuple[str, list[str]]:
    failures = []
    for result, measurement in picks:
        layout = ModuleLayout.from_text(text)
        span = layout.function(result.name)
        if span is None or measurement.output is None:
            failures.append(result.name)
            continue
        try:
            text = splice_function(layout, span, result.function, measurement.output).apply(text)
        except SpliceError as error:
            log.warning("could not splice @%s: %s", result.name, error)
            failures.append(result.name)
    return text, failures


def optimize_module(
    optimizer: Optimizer,
    text: str,
    *,
    names: Sequence[str] | None = None,
    budget: int,
    sources: Sequence[str],
    mode: str = "best",
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
) -> ModuleOptimization:
    _, functions = standalone_functions(text, names)
    results = optimizer.optimize_all(functions, budget=budget, sources=sources, cancel=cancel, progress=progress)
    return write_back(optimizer, text, results, mode)
