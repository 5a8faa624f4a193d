"""Optimizing functions inside a module and writing the winners back.

`splice_verified` is the one splice-and-verify step: the CLI and "Optimize module" (`write_back`),
"Optimize function" (session/edits.py) and the behaviour check's spliced module (`splice_functions`, its
splice half) all go through it. Every function not optimized stays byte-identical. The rewritten module
must pass `opt -passes=verify`; if it does not, functions are spliced one at a time and any that breaks
verification is left as written.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ..compiler import OptTool, verify
from ..ir import ModuleLayout, SpliceError, StandaloneFunction, parse, splice_function, standalone_function
from ..ir.tokens import references
from .optimizer import FunctionResult, Measurement, Optimizer, Progress

log = logging.getLogger(__name__)

NOT_VERIFIED = "the rewritten module did not verify"
_BARE_NEWLINE = re.compile(r"(?<!\r)\n")


class UnknownFunction(LookupError):
    pass


@dataclass(frozen=True)
class FunctionOutcome:
    result: FunctionResult
    applied: Measurement | None  # what was written back, if anything
    verified: bool
    reason: str | None = None  # why nothing was written back
    failure: str | None = None  # the step that kept a pick out: "missing", "splice" or "verify" (None: not picked)
    error: str | None = None  # that step's message (the splice's, or opt's verifier's)


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


def write_back(
    optimizer: Optimizer, text: str, results: Sequence[FunctionResult], mode: str = "best", *, follow_line_ends: bool = False
) -> ModuleOptimization:
    """What `choice` picks for each result, written into `text` by `splice_verified` (the CLI, "Optimize module")."""
    picks = [(result, *choice(result, mode)) for result in results]
    module = splice_verified(
        optimizer.opt, text, [(r, m) for r, m, _ in picks if m is not None], timeout=optimizer.timeout, follow_line_ends=follow_line_ends
    )
    written = iter(module.outcomes)
    outcomes = [next(written) if m is not None else FunctionOutcome(r, None, False, why) for r, m, why in picks]
    return ModuleOptimization(module.text, tuple(outcomes))


def splice_verified(
    opt: OptTool,
    text: str,
    picks: Sequence[tuple[FunctionResult, Measurement]],
    *,
    timeout: float | None = None,
    follow_line_ends: bool = False,
) -> ModuleOptimization:
    """The one splice-and-verify step: `text` with each function rewritten as its measurement, verified
    with `opt -passes=verify` as a whole; when that fails, one function at a time, and any that breaks
    verification (or cannot be spliced) is left as written. An outcome per pick says what was written or
    why not (`failure`: "missing", "splice" or "verify", with the message in `error`).

    `follow_line_ends`: in a document whose lines end with CR LF, what is written does too (an editor's
    file: the text verified is then the text the editor will have); otherwise it is written as `opt`
    printed it."""
    limit = {} if timeout is None else {"timeout": timeout}
    candidate_text, problems = splice_functions(text, picks, follow_line_ends=follow_line_ends)
    spliced = [i for i, problem in enumerate(problems) if problem is None]

    def left(i: int, reason: str = NOT_VERIFIED, failure: str | None = None, error: str | None = None) -> FunctionOutcome:
        if problems[i] is not None:
            failure, error = problems[i]
        return FunctionOutcome(picks[i][0], None, False, reason, failure, error)

    if not spliced:
        return ModuleOptimization(text, tuple(left(i) for i in range(len(picks))))
    check = verify(opt, candidate_text, **limit)
    if check.ok:
        outcomes = (FunctionOutcome(r, m, True) if problems[i] is None else left(i) for i, (r, m) in enumerate(picks))
        return ModuleOptimization(candidate_text, tuple(outcomes))
    if check.error and "timed out" in check.error:  # one verify per function would time out as well
        log.warning("verifying the rewritten module %s; nothing was written back", check.error)
        reason = f"verifying the rewritten module {check.error.removeprefix('opt ')}"
        return ModuleOptimization(text, tuple(left(i, reason, "verify", check.error) for i in range(len(picks))))
    if len(spliced) == 1:  # that was the one function's own verify
        return ModuleOptimization(text, tuple(left(i, NOT_VERIFIED, "verify", check.error) for i in range(len(picks))))
    log.warning("module did not verify after splicing all functions (%s); splicing one at a time", check.error)
    current = text
    outcomes = []
    for i, (result, measurement) in enumerate(picks):
        if problems[i] is not None:
            outcomes.append(left(i))
            continue
        attempt, (problem,) = splice_functions(current, [(result, measurement)], follow_line_ends=follow_line_ends)
        if problem is not None:
            outcomes.append(FunctionOutcome(result, None, False, NOT_VERIFIED, *problem))
            continue
        check = verify(opt, attempt, **limit)
        if check.ok:
            current = attempt
            outcomes.append(FunctionOutcome(result, measurement, True))
        else:
            outcomes.append(FunctionOutcome(result, None, False, NOT_VERIFIED, "verify", check.error))
    return ModuleOptimization(current, tuple(outcomes))


def splice_functions(
    text: str, picks: Sequence[tuple[FunctionResult, Measurement]], *, follow_line_ends: bool = False
) -> tuple[str, list[tuple[str, str] | None]]:
    """The splice half of `splice_verified` (not verified; the behaviour check compiles what it gives):
    each pick spliced in its place; what passes created (declarations, attribute groups, metadata) is
    appended once at the end, by section, and metadata that only the replaced functions used is dropped.
    Per pick, None when it was spliced, else (failure, message)."""
    newline = "\r\n" if follow_line_ends and uses_crlf(text) else "\n"

    def ends(piece: str) -> str:
        return _BARE_NEWLINE.sub("\r\n", piece) if newline == "\r\n" else piece

    problems: list[tuple[str, str] | None] = []
    body = text  # the module without the appended sections
    declarations: list[str] = []
    attribute_groups: list[str] = []
    metadata: list[str] = []
    current = text
    for result, measurement in picks:
        layout = ModuleLayout.from_text(current)
        span = layout.function(result.name)
        if span is None or span.end > len(body):
            problems.append(("missing", f"@{result.name} is not defined in the module"))
            continue
        if measurement.output is None:
            problems.append(("splice", "the rewrite's printed module is not available"))
            continue
        try:
            splice = splice_function(layout, span, result.function, measurement.output)
        except SpliceError as error:
            log.warning("could not splice @%s: %s", result.name, error)
            problems.append(("splice", str(error)))
            continue
        body = body[: splice.start] + ends(splice.function_text) + body[splice.end :]
        declarations += map(ends, splice.declarations)
        attribute_groups += splice.attribute_groups
        metadata += splice.metadata
        current = _with_appendix(body, [declarations, attribute_groups, metadata], newline)
        problems.append(None)
    return drop_orphaned_metadata(text, current), problems


def uses_crlf(text: str) -> bool:
    """Whether most lines of a document end with CR LF (a Windows editor's file)."""
    newlines = text.count("\n")
    return newlines > 0 and 2 * text.count("\r\n") > newlines


def _with_appendix(body: str, sections: list[list[str]], newline: str = "\n") -> str:
    """`body` and, after one blank line, each non-empty section (blank lines between sections)."""
    blocks = [newline.join(section) for section in sections if section]
    if not blocks:
        return body
    if not body.endswith("\n"):
        body += newline
    return body + newline + (newline * 2).join(blocks) + newline


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
        end = entity.end
        if after.startswith("\r\n", end):
            end += 2
        elif after.startswith("\n", end):
            end += 1
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
