"""Differential checks of rewrites before they are written back (`--check-behaviour`, "Optimize function").

A rewrite that PassPilot found (smaller than -Oz) is compared with the original function twice:
(a) the standalone function against `opt`'s output for the winning pass list, and, when (a) agrees,
(b) the whole module against the module with the rewrite spliced in. A difference in (a) means the pass
list miscompiles the function (an LLVM bug, or a faulty `opt`); a difference only in (b) means PassPilot's
splice is wrong. Either blocks that rewrite: the next-best candidate that checks is written instead, else
-Oz, else the function is left as written. -Oz's own output is the reference that tells inputs with
undefined behaviour from real differences (see `compiler.behaviour`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..compiler.behaviour import BehaviourCheck, BehaviourChecker, BehaviourOptions, not_checked
from ..ir import ModuleLayout
from .module import FunctionOutcome, ModuleOptimization, choice, splice_functions, write_back
from .optimizer import Cancelled, FunctionResult, Measurement, Optimizer

log = logging.getLogger(__name__)

MISCOMPILE = "the pass list miscompiles this function (an LLVM bug, or a faulty opt)"
SPLICE_BUG = "a PassPilot splice bug"
OZ_NOT_CHECKED = "-Oz (LLVM's standard pipeline) is written, and only PassPilot's own finds are checked"
DEFAULT_FALLBACKS = 3  # candidates tried after a blocked best, before falling back to -Oz

Splicer = Callable[[str, FunctionResult, Measurement], "str | None"]


@dataclass(frozen=True)
class BlockedRewrite:
    measurement: Measurement
    stage: str  # "standalone" (opt's output differs) or "module" (only the spliced module differs)
    diagnosis: str  # MISCOMPILE or SPLICE_BUG
    check: BehaviourCheck

    def to_json(self) -> dict:
        return {
            "passes": self.measurement.passes,
            "source": self.measurement.source,
            "count": self.measurement.count,
            "stage": self.stage,
            "diagnosis": self.diagnosis,
            "check": self.check.to_json(),
        }


@dataclass(frozen=True)
class BehaviourVerdict:
    """What the checks found for one function, and what to write back."""

    function: str
    check: BehaviourCheck  # the standalone check of what is written (or why there is none)
    write: Measurement | None  # the rewrite to write back; None leaves the function as written
    module_check: BehaviourCheck | None = None  # the check of the spliced module, when the standalone one agreed
    blocked: tuple[BlockedRewrite, ...] = ()
    fallback: str | None = None  # what was written instead of a blocked best, in words

    @property
    def status(self) -> str:
        """`blocked`, or the status of the check of what is written (`same`, `not-checked`)."""
        return "blocked" if self.blocked else self.check.status

    def summary(self) -> str:
        """One line for the CLI table, hovers and code actions."""
        if not self.blocked:
            return self.check.summary()
        first = self.blocked[0]
        text = f"blocked: {_difference(first.check)} ({first.diagnosis})"
        if self.fallback:
            text += f"; {self.fallback}"
        return text

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "summary": self.summary(),
            "check": self.check.to_json(),
            "module_check": self.module_check.to_json() if self.module_check else None,
            "written": {"passes": self.write.passes, "source": self.write.source, "count": self.write.count} if self.write else None,
            "blocked": [b.to_json() for b in self.blocked],
            "fallback": self.fallback,
        }


def _difference(check: BehaviourCheck) -> str:
    if check.counterexample:
        first_line = check.counterexample.splitlines()[0].removeprefix("input: ")
        return f"different results on input {first_line}"
    return check.reason or "different results"


class RewriteChecker:
    """Checks rewrites with one `BehaviourChecker` (its compiled driver is reused until `close`)."""

    def __init__(
        self,
        optimizer: Optimizer,
        options: BehaviourOptions = BehaviourOptions(),
        fallbacks: int = DEFAULT_FALLBACKS,
        splice: Splicer | None = None,
    ):
        """`splice` puts a rewrite into the module for check (b): PassPilot's own splice unless a test
        hands in a faulty one."""
        if options.driver_dir is None and optimizer.cache is not None:  # keep the compiled driver beside the results
            options = dataclasses.replace(options, driver_dir=str(optimizer.cache.directory / "behaviour-driver"))
        self.optimizer = optimizer
        self.options = options
        self.fallbacks = fallbacks
        self.splice = splice or spliced_module
        self.checker = BehaviourChecker(options)

    def close(self) -> None:
        self.checker.close()

    def __enter__(self) -> RewriteChecker:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def verdicts(
        self,
        text: str,
        results: Sequence[FunctionResult],
        mode: str = "best",
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[BehaviourVerdict]:
        """A verdict per result; functions are checked in parallel (each check runs processes)."""
        done = 0
        lock = threading.Lock()

        def one(result: FunctionResult) -> BehaviourVerdict:
            nonlocal done
            verdict = self.verdict(text, result, mode, cancel=cancel)
            with lock:
                done += 1
                if progress is not None:
                    progress(done, len(results))
            return verdict

        with ThreadPoolExecutor(max_workers=max(1, self.optimizer.jobs), thread_name_prefix="passpilot-behaviour") as pool:
            return list(pool.map(one, results))

    def verdict(self, text: str, result: FunctionResult, mode: str = "best", *, cancel: threading.Event | None = None) -> BehaviourVerdict:
        """Check what `choice(result, mode)` would write back for one function of the module `text`."""
        picked, why = choice(result, mode)
        if picked is None:
            return BehaviourVerdict(result.name, not_checked(f"nothing is written back ({why})"), None)
        if mode == "oz" or picked is result.oz or picked.source == "oz":
            return BehaviourVerdict(result.name, not_checked(OZ_NOT_CHECKED), picked)
        oz = result.oz if result.oz.ok and result.oz.output is not None else None
        limit = oz.count if oz is not None else result.original
        others = sorted(
            (m for m in result.measurements if m.ok and m is not picked and m.source != "oz" and m.count < limit),
            key=lambda m: (m.count, m.length),
        )
        seen = {picked.passes}
        candidates = [picked]
        for measurement in others:
            if len(candidates) > self.fallbacks:
                break
            if measurement.passes not in seen:
                seen.add(measurement.passes)
                candidates.append(measurement)

        blocked: list[BlockedRewrite] = []
        oz_module: str | None = None
        for measurement in candidates:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            measurement = self.optimizer.printed(result.function, measurement, cancel)
            if not measurement.ok or (measurement is not picked and measurement.count >= limit):
                continue
            standalone = self.checker.check(
                result.function.text, measurement.output, result.function.token, reference=oz.output if oz else None
            )
            if standalone.status == "different":
                log.warning("@%s: %s blocked: %s", result.name, measurement.passes, standalone.reason)
                blocked.append(BlockedRewrite(measurement, "standalone", MISCOMPILE, standalone))
                continue
            fallback = _instead(blocked, measurement)
            if standalone.status == "not-checked":
                return BehaviourVerdict(result.name, standalone, measurement, None, tuple(blocked), fallback)
            token = _token_in(text, result)
            spliced = self.splice(text, result, measurement) if token else None
            if spliced is None:
                module = not_checked(f"@{result.name} could not be spliced into the module for the check")
            else:
                if oz_module is None and oz is not None:
                    oz_module = spliced_module(text, result, oz) or ""
                module = self.checker.check(text, spliced, token, reference=oz_module or None)
            if module.status == "different":
                log.warning("@%s: %s blocked in the module: %s", result.name, measurement.passes, module.reason)
                blocked.append(BlockedRewrite(measurement, "module", SPLICE_BUG, module))
                continue
            return BehaviourVerdict(result.name, standalone, measurement, module, tuple(blocked), fallback)

        if not blocked:
            return BehaviourVerdict(result.name, not_checked("no candidate could be printed for the check"), picked)
        first = blocked[0].check
        if mode == "best" and result.oz.ok and result.oz.count <= result.original:
            return BehaviourVerdict(result.name, first, result.oz, None, tuple(blocked), "-Oz was written instead")
        return BehaviourVerdict(result.name, first, None, None, tuple(blocked), "the function was left as written")


def _instead(blocked: list[BlockedRewrite], written: Measurement) -> str | None:
    if not blocked:
        return None
    return f"the next-best pass list ({written.count} instructions, {written.source}) was written instead"


def spliced_module(text: str, result: FunctionResult, measurement: Measurement, *, follow_line_ends: bool = False) -> str | None:
    """The module `text` with only this function rewritten as `measurement`, spliced as it is written
    back (`module.splice_functions`; None when it cannot be)."""
    spliced, (problem,) = splice_functions(text, [(result, measurement)], follow_line_ends=follow_line_ends)
    if problem is not None:
        log.warning("could not splice @%s for the behaviour check: %s", result.name, problem[1])
        return None
    return spliced


def _token_in(text: str, result: FunctionResult) -> str | None:
    """The function's name as the module writes it."""
    span = ModuleLayout.from_text(text).function(result.name)
    return span.token if span is not None else None


def checked_results(results: Sequence[FunctionResult], verdicts: Sequence[BehaviourVerdict]) -> list[FunctionResult]:
    """The results with `best` replaced by what each verdict writes (a fallback, -Oz, or nothing)."""
    adjusted = []
    for result, verdict in zip(results, verdicts):
        if verdict.blocked:
            adjusted.append(dataclasses.replace(result, best=verdict.write))
        else:
            adjusted.append(result)
    return adjusted


def write_back_checked(
    optimizer: Optimizer, text: str, results: Sequence[FunctionResult], verdicts: Sequence[BehaviourVerdict], mode: str = "best"
) -> ModuleOptimization:
    """`write_back` of what the verdicts allow; a function left as written says why."""
    module = write_back(optimizer, text, checked_results(results, verdicts), mode)
    outcomes = []
    for outcome, verdict in zip(module.outcomes, verdicts):
        if outcome.applied is None and verdict.blocked:
            outcome = FunctionOutcome(outcome.result, None, False, verdict.summary())
        outcomes.append(outcome)
    return ModuleOptimization(module.text, tuple(outcomes))
