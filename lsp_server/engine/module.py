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
from ..ir.tokens import references
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
    check = verify(optimizer.opt, candidate_text, timeout=optimizer.timeout)
    if check.ok and not failures:
        outcomes = [FunctionOutcome(r, m, m is not None, reason) for r, m, reason in picks]
        return ModuleOptimization(candidate_text, tuple(outcomes))
    if check.error and "timed out" in check.error:  # one verify per function would time out as well
        log.warning("verifying the rewritten module %s; nothing was written back", check.error)
        reason = f"verifying the rewritten module {check.error.removeprefix('opt ')}"
        return ModuleOptimization(text, tuple(FunctionOutcome(r, None, False, why or reason) for r, _, why in picks))
    log.warning("module did not verify after splicing all functions (%s); splicing one at a time", check.error)
    current = text
    outcomes = []
    for result, measurement, reason in picks:
        if measurement is None:
            outcomes.append(FunctionOutcome(result, None, False, reason))
            continue
        attempt, failed = _splice_all(current, [(result, measurement)])
        if not failed and verify(optimizer.opt, attempt, timeout=optimizer.timeout).ok:
            current = attempt
            outcomes.append(FunctionOutcome(result, measurement, True))
        else:
            outcomes.append(FunctionOutcome(result, None, False, "the rewritten module did not verify"))
    return ModuleOptimization(current, tuple(outcomes))


def _splice_all(text: str, picks: list[tuple[FunctionResult, Measurement]]) -> tuple[str, list[str]]:
    """Splice each pick; what passes created (declarations, attribute groups, metadata) is appended once
    at the end, by section, and metadata that only the replaced functions used is dropped."""
    failures = []
    body = text  # the module without the appended sections
    declarations: list[str] = []
    attribute_groups: list[str] = []
    metadata: list[str] = []
    current = text
    for result, measurement in picks:
        layout = ModuleLayout.from_text(current)
        span = layout.function(result.name)
        if span is None or measurement.output is None or span.end > len(body):
            failures.append(result.name)
            continue
        try:
            splice = splice_function(layout, span, result.function, measurement.output)
        except SpliceError as error:
            log.warning("could not splice @%s: %s", result.name, error)
            failures.append(result.name)
            continue
        start = splice.start
        body = body[:start] + splice.function_text + body[splice.end :]
        declarations += splice.declarations
        attribute_groups += splice.attribute_groups
        metadata += splice.metadata
        current = _with_appendix(body, [declarations, attribute_groups, metadata])
    return drop_orphaned_metadata(text, current), failures


def _with_appendix(body: str, sections: list[list[str]]) -> str:
    """`body` and, after one blank line, each non-empty section (blank lines between sections)."""
    blocks = ["\n".join(section) for section in sections if section]
    if not blocks:
        return body
    if not body.endswith("\n"):
        body += "\n"
    return body + "\n" + "\n\n".join(blocks) + "\n"


def _reachable_metadata(layout: ModuleLayout) -> set[str]:
    """Numbered metadata nodes referenced, directly or through other nodes, from outside the numbered nodes."""
    pending: list[str] = []
    for entity in layout.entities:
        if entity.kind == "metadata" and entity.token in layout.metadata:
            continue
        pending += references(layout.text[entity.start : entity.end], "metadata")  # (comments are skipped)
    reached: set[str] = set()
    while pending:
        token = pending.pop()
        if token in reached or token not in layout.metadata:
            continue
        reached.add(token)
        pending += references(layout.metadata[token], "metadata")
    return reached


def drop_orphaned_metadata(before: str, after: str) -> str:
    """Remove the numbered metadata nodes that were in use in `before` and are no longer in `after`
    (e.g. the loop metadata of a replaced function); nodes that nothing used before stay."""
    if before == after:
        return after
    old, new = ModuleLayout.from_text(before), ModuleLayout.from_text(after)
    orphaned = (_reachable_metadata(old) - _reachable_metadata(new)) & set(new.metadata)
    if not orphaned:
        return after
    result, cursor = [], 0
    for entity in new.entities:
        if entity.kind != "metadata" or entity.token not in orphaned:
            continue
        end = entity.end + 1 if after[entity.end : entity.end + 1] == "\n" else entity.end
        result.append(after[cursor : entity.start])
        cursor = end
    result.append(after[cursor:])
    return "".join(result)


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
