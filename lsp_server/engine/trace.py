"""The pass explorer: what each pass of a list did to a function, and the shortest list that does as well.

A trace comes from one `opt` run with `-print-changed -print-module-scope` (flags fixed here; the pass
list is checked against the vocabulary first): LLVM prints the whole standalone module after every pass
that changed it and one line for every pass that did not. The dumps become steps (pass, what it ran on,
instruction count, IR, diff against the step before); passes that changed nothing are folded away and
counted. The module after the last step is what the list makes of the function, so its count is the
measured count of the list.

Minimization removes elements of a winning list, one at a time, as long as the count stays the same
(greedy delta debugging): the result is a sub-list from which no single element can be dropped.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..compiler import PassListError
from ..compiler.runner import print_changes
from ..ir import StandaloneFunction, count_instructions
from .optimizer import Cancelled, Optimizer
from .sources import Candidate

Progress = Callable[[int, int], None]

_HEADER = re.compile(r"^\*\*\* IR (?:Dump At Start|Dump After (?P<pass>.+?) on (?P<target>.+?)(?P<quiet> omitted because no change| filtered out)?|Pass .*) \*\*\*$")
_START = "*** IR Dump At Start ***"
MINIMIZED_SOURCE = "minimized"


class TraceError(Exception):
    """The trace cannot be made (a rejected list, or `opt` failed); the message says why."""


@dataclass(frozen=True)
class TraceStep:
    pass_name: str  # LLVM's name of the pass, e.g. `InstCombinePass`
    target: str  # what it ran on: a function, `(f)` (a call-graph SCC), `loop … in function f`, `[module]`
    count: int  # instructions of the module after the pass
    ir: str  # the module after the pass
    diff: str  # unified diff against the module before the pass


@dataclass(frozen=True)
class PassTrace:
    function: str
    passes: str  # the checked pass list
    original: int  # instructions before the first pass
    original_ir: str
    steps: tuple[TraceStep, ...]
    folded: int  # passes that ran without changing the module

    @property
    def final(self) -> int:
        return self.steps[-1].count if self.steps else self.original

    @property
    def final_ir(self) -> str:
        return self.steps[-1].ir if self.steps else self.original_ir

    def as_text(self) -> str:
        """The trace as one plain-text document (steps as headed unified diffs), for any editor."""
        lines = [
            f"; PassPilot pass explorer: @{self.function}",
            f"; passes: {self.passes}",
            f"; {self.original} -> {self.final} instructions in {len(self.steps)} step{'s' if len(self.steps) != 1 else ''}"
            f" ({self.folded} pass{'es' if self.folded != 1 else ''} that changed nothing folded away)",
            "",
        ]
        before = self.original
        for number, step in enumerate(self.steps, 1):
            lines.append(f";; {number}. {step.pass_name} on {step.target}: {before} -> {step.count} instructions")
            lines.append(step.diff.rstrip("\n"))
            lines.append("")
            before = step.count
        return "\n".join(lines)


def _diff(before: str, after: str, number: int, pass_name: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"before {number}. {pass_name}",
            tofile=f"after {number}. {pass_name}",
            n=3,
        )
    )


def parse_dumps(output: str) -> tuple[str | None, list[tuple[str, str, str]], int]:
    """LLVM's `-print-changed -print-module-scope` output: the module at the start, the changing passes
    as (pass, target, module after), and how many passes changed nothing."""
    start: str | None = None
    changes: list[tuple[str, str, str]] = []
    unchanged = 0
    current: list[str] | None = None
    header: tuple[str, str] | None = None

    def flush() -> None:
        nonlocal start
        if current is None:
            return
        text = "\n".join(current).strip("\n") + "\n"
        if header is None:
            start = text
        else:
            changes.append((header[0], header[1], text))

    for line in output.split("\n"):
        match = _HEADER.match(line) if line.startswith("*** IR ") else None
        if match is None:
            if current is not None:
                current.append(line)
            continue
        flush()
        current, header = None, None
        if line == _START:
            current = []
        elif match.group("pass") is not None:
            if match.group("quiet"):
                unchanged += 1
            else:
                current, header = [], (match.group("pass"), match.group("target"))
    flush()
    return start, changes, unchanged


def trace_passes(
    optimizer: Optimizer,
    function: StandaloneFunction,
    passes: str,
    *,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
) -> PassTrace:
    """Run `passes` on the function once with LLVM printing every change; raise TraceError or Cancelled."""
    try:
        checked = optimizer.vocabulary.check(passes)
    except PassListError as error:
        raise TraceError(f"the pass list was rejected: {error}") from None
    run = print_changes(optimizer.opt, checked, function.text, timeout=optimizer.timeout, memory_mb=optimizer.memory_mb, cancel=cancel)
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    if not run.ok:
        raise TraceError(f"opt could not run the pass list on @{function.name}: {run.error}")
    start, changes, unchanged = parse_dumps(run.output or "")
    original_ir = start if start is not None else function.text
    original = count_instructions(original_ir)
    steps: list[TraceStep] = []
    before = original_ir
    for number, (pass_name, target, after) in enumerate(changes, 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if progress is not None:
            progress(number - 1, len(changes))
        try:
            count = count_instructions(after)
        except Exception as error:  # noqa: BLE001 - LLVM printed something llvmlite cannot read
            raise TraceError(f"the IR printed after {pass_name} does not parse: {error}") from None
        steps.append(TraceStep(pass_name, target, count, after, _diff(before, after, number, pass_name)))
        before = after
    return PassTrace(function.name, checked, original, original_ir, tuple(steps), unchanged)


# Minimization


@dataclass(frozen=True)
class Minimized:
    function: str
    passes: str  # the checked list it started from
    minimized: str  # the shortest sub-list found, with the same count
    count: int
    removed: tuple[str, ...]  # the elements dropped, in list order
    measured: int  # pass lists measured along the way

    @property
    def length(self) -> int:
        return len(split_pass_list(self.minimized))


def split_pass_list(passes: str) -> list[str]:
    """The top-level elements of a checked pass list (`a,function(b,c),d<x;y>` -> three elements)."""
    elements: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(passes):
        if char in "(<":
            depth += 1
        elif char in ")>":
            depth -= 1
        elif char == "," and depth == 0:
            elements.append(passes[start:index])
            start = index + 1
    elements.append(passes[start:])
    return [element for element in elements if element]


def minimize_passes(
    optimizer: Optimizer,
    function: StandaloneFunction,
    passes: str,
    *,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
) -> Minimized:
    """Drop elements of `passes` while the function's count stays that of the whole list."""
    try:
        checked = optimizer.vocabulary.check(passes)
    except PassListError as error:
        raise TraceError(f"the pass list was rejected: {error}") from None

    measured = 0

    def count_of(elements: list[str]) -> int | None:
        nonlocal measured
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        measured += 1
        result = optimizer.measure(function, Candidate(",".join(elements), MINIMIZED_SOURCE), cancel)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        return result.count

    elements = split_pass_list(checked)
    target = count_of(elements)
    if target is None:
        raise TraceError(f"the pass list does not run on @{function.name}")
    removed: list[int] = []  # indices into the original elements
    indices = list(range(len(elements)))
    changed = True
    while changed and len(indices) > 1:
        changed = False
        position = len(indices) - 1  # from the end: late passes are often clean-ups the others make redundant
        while position >= 0 and len(indices) > 1:
            if progress is not None:
                progress(len(elements) - position, len(elements))
            trial = indices[:position] + indices[position + 1 :]
            if count_of([elements[i] for i in trial]) == target:
                removed.append(indices[position])
                indices = trial
                changed = True
            position -= 1
    kept = ",".join(elements[i] for i in indices)
    return Minimized(function.name, checked, kept, target, tuple(elements[i] for i in sorted(removed)), measured)
