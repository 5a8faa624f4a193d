"""Measure candidate pass lists with a compiler backend and keep the smallest result.

-Oz is always measured and is the reference: the best result is never larger than it, because -Oz is a
candidate and ties go to -Oz. The budget counts compiler calls beyond -Oz. Candidates are measured
without their printed modules where the backend can skip printing (libllvm); the modules of -Oz and of
the winner, which write-back, code actions and previews need, are fetched afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from ..compiler import CompilerBackend, OptBackend, OptTool, PassListError, PassVocabulary, load_vocabulary
from ..compiler.runner import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S
from ..ir import StandaloneFunction, count_instructions
from ..ir.tokens import display_name
from .cache import ResultCache, cache_key
from .sources import OZ, Candidate, CandidateSource

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Measurement:
    passes: str
    source: str
    count: int | None
    error: str | None = None
    output: str | None = field(default=None, repr=False)
    predicted_before: int | None = None
    predicted_after: int | None = None
    note: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.count is not None

    @property
    def length(self) -> int:
        return len(self.passes.split(","))

    @property
    def rejected(self) -> bool:
        """The list never reached `opt`: it failed the vocabulary check."""
        return bool(self.error) and self.error.startswith("rejected:")


@dataclass(frozen=True)
class FunctionResult:
    function: StandaloneFunction
    original: int
    oz: Measurement
    best: Measurement | None
    measurements: tuple[Measurement, ...]

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def model_prediction(self) -> Measurement | None:
        """The model's first valid proposal, whose predicted counts hover shows beside the measured ones."""
        return next((m for m in self.measurements if m.source == "model" and m.predicted_after is not None), None)

    def figures(self) -> dict:
        """The measured counts and the winning list, as the CLI and the language server report them."""
        best = self.best
        return {
            "original": self.original,
            "oz": self.oz.count,
            "best": best.count if best else None,
            "passes": best.passes if best else None,
            "source": best.source if best else None,
        }

    @property
    def opt_calls(self) -> int:
        """Budget spent: candidates beyond -Oz that reached `opt` (or its cache)."""
        return sum(1 for m in self.measurements[1:] if not m.rejected and m.error != "cancelled")


def ranking(measurement: Measurement) -> tuple:
    """Which valid measurement wins: the smaller count, then -Oz, then the shorter list."""
    return (measurement.count, measurement.source != "oz", measurement.length)


class Cancelled(Exception):
    pass


def parallel_jobs(jobs: int) -> int:
    """Candidates measured at once (and libllvm workers): the setting, or one per core."""
    return jobs or os.cpu_count() or 1


class Optimizer:
    def __init__(
        self,
        opt: OptTool,
        *,
        sources: Sequence[CandidateSource] = (),
        cache: ResultCache | None = None,
        vocabulary: PassVocabulary | None = None,
        jobs: int = 0,
        timeout: float = DEFAULT_TIMEOUT_S,
        memory_mb: int = DEFAULT_MEMORY_MB,
        backend: CompilerBackend | None = None,
    ):
        """`opt` verifies rewritten modules; `backend` measures candidates (default: `opt` processes)."""
        self.opt = opt
        self.vocabulary = vocabulary or load_vocabulary(opt)
        self.sources = {source.name: source for source in sources}
        self.cache = cache
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.jobs = parallel_jobs(jobs)
        self.backend = backend or OptBackend(opt, memory_mb=memory_mb)
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="passpilot-opt")

    def close(self) -> None:
        """Stops the measuring threads and the backend's worker processes."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.backend.close()
        if self.cache is not None:
            self.cache.close()

    def measure(
        self, function: StandaloneFunction, candidate: Candidate, cancel: threading.Event | None = None, *, want_output: bool = False
    ) -> Measurement:
        """Check one pass list, run it through the backend and count the result (or say why there is none).

        `output` holds the printed module when `want_output` is set, or when the backend printed it anyway.
        """
        details = {
            "predicted_before": candidate.predicted_before,
            "predicted_after": candidate.predicted_after,
            "note": candidate.note,
        }
        try:
            passes = self.vocabulary.check(candidate.passes)
        except PassListError as error:
            return Measurement(candidate.passes, candidate.source, None, f"rejected: {error}", **details)
        key = cache_key(self.backend.identity.fingerprint, function.text, passes)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None and not (want_output and hit["count"] is not None and hit["output"] is None):
                return Measurement(passes, candidate.source, hit["count"], hit["error"], hit["output"], cached=True, **details)
        result = self.backend.run(function.text, passes, want_output=want_output, timeout=self.timeout, cancel=cancel)
        count, error, output = result.count, result.error, result.output
        if result.ok and display_name(function.token) not in result.defined:  # the standalone's name (anonymous functions are renamed)
            count, error, output = None, "the function disappeared from the optimized module", None
        if self.cache is not None and not result.transient:
            self.cache.put(key, count, error, output)
        return Measurement(passes, candidate.source, count, error, output, **details)

    def optimize(
        self,
        function: StandaloneFunction,
        *,
        budget: int,
        sources: Sequence[str],
        cancel: threading.Event | None = None,
    ) -> FunctionResult:
        return self.optimize_all([function], budget=budget, sources=sources, cancel=cancel)[0]

    def optimize_all(
        self,
        functions: Sequence[StandaloneFunction],
        *,
        budget: int,
        sources: Sequence[str],
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> list[FunctionResult]:
        """Plan and measure candidates for many functions at once so that every core stays busy.

        With the `refine` source among `sources`, the other sources fill the budget less its reserve;
        once a function's lists are measured, edits of its best one fill what is left."""
        unknown = [s for s in sources if s != "oz" and s not in self.sources]
        if unknown:
            log.info("candidate sources not available here, skipped: %s", ", ".join(unknown))
        refine = self.sources.get("refine") if "refine" in sources else None
        reserve = refine.reserve(budget) if refine is not None else 0
        planned: list[tuple[list[Future[Measurement]], set[str], int]] = []  # futures, lists planned, refinements due
        total = 0
        done = 0
        lock = threading.Lock()

        def finished(_: Future) -> None:
            nonlocal done
            with lock:
                done += 1
                current = done
            if progress is not None:
                progress(current, total)

        def submit(function: StandaloneFunction, candidates: Sequence[Candidate]) -> list[Future[Measurement]]:
            futures = []
            for candidate in candidates:
                future = self._pool.submit(self._measure_or_reject, function, candidate, cancel)
                future.add_done_callback(finished)
                futures.append(future)
            return futures

        for function in functions:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            plan, seen = self._plan(function, budget - reserve, sources)
            due = min(budget - (len(seen) - 1), len(refine.edits)) if refine is not None else 0
            total += len(plan) + due
            planned.append((submit(function, plan), seen, due))

        if refine is not None:  # then edits of each function's best list, functions in order
            for index, (function, (futures, seen, due)) in enumerate(zip(functions, planned)):
                if not due:
                    continue
                measurements = [future.result() for future in futures]
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                edits = self._distinct(refine.refinements(measurements), seen, due)  # `seen` grows by them
                with lock:
                    total += len(edits) - due  # fewer when edits repeat measured lists; rejected ones are reported
                planned[index] = (futures + submit(function, edits), seen, due)

        chosen = []
        for function, (futures, _, _) in zip(functions, planned):
            measurements = [future.result() for future in futures]
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            chosen.append(self._pool.submit(self._choose_with_output, function, measurements, cancel))
        results = [future.result() for future in chosen]
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        return results

    def _measure_or_reject(self, function: StandaloneFunction, candidate: Candidate, cancel) -> Measurement:
        if cancel is not None and cancel.is_set():
            return Measurement(candidate.passes, candidate.source, None, "cancelled")
        # -Oz's module is always kept (mode "oz", previews): print it in the same run.
        return self.measure(function, candidate, cancel, want_output=candidate.source == "oz")

    def _plan(self, function: StandaloneFunction, budget: int, sources: Sequence[str]) -> tuple[list[Candidate], set[str]]:
        """-Oz plus up to `budget` distinct valid lists, filled from the sources in order; and the
        normalized lists planned (-Oz included)."""
        plan = [Candidate(OZ, "oz")]
        seen = {OZ}
        for name in sources:
            source = self.sources.get(name)
            remaining = budget - (len(seen) - 1)
            if source is not None and remaining > 0:
                plan += self._distinct(source.candidates(function, remaining), seen, remaining)
        return plan, seen

    def _distinct(self, candidates: Iterable[Candidate], seen: set[str], limit: int) -> list[Candidate]:
        """Candidates until `limit` valid lists not in `seen` are taken. A list that fails the vocabulary
        check is kept, to be reported as a rejection: it costs no `opt` call."""
        taken = []
        valid = 0
        for candidate in candidates:
            if valid >= limit:
                break
            try:
                normalized = self.vocabulary.check(candidate.passes)
            except PassListError:
                taken.append(candidate)
                continue
            if normalized in seen:
                continue
            seen.add(normalized)
            taken.append(candidate)
            valid += 1
        return taken

    def _choose_with_output(self, function: StandaloneFunction, measurements: list[Measurement], cancel) -> FunctionResult:
        """The smallest candidate, with the printed modules of -Oz and of the winner (and no other)."""
        measurements, _ = self.best_printed(function, measurements, cancel, keep=lambda m: m.source == "oz")
        result = self._choose(function, measurements)
        keep = {id(result.oz), id(result.best)}
        slim = tuple(m if id(m) in keep or m.output is None else dataclasses.replace(m, output=None) for m in result.measurements)
        return dataclasses.replace(result, measurements=slim)

    def best_printed(
        self,
        function: StandaloneFunction,
        measurements: Sequence[Measurement],
        cancel: threading.Event | None = None,
        keep: Callable[[Measurement], bool] = lambda m: False,
    ) -> tuple[list[Measurement], Measurement | None]:
        """(measurements, the best) once the best (by `ranking`) and those `keep` names have their printed
        modules. Printing may change a count (see `printed`), so the best is chosen again until it holds."""
        measurements = list(measurements)
        while True:
            valid = [i for i, m in enumerate(measurements) if m.ok]
            best = min(valid, key=lambda i: ranking(measurements[i]), default=None)
            missing = [i for i in valid if measurements[i].output is None and (i == best or keep(measurements[i]))]
            if not missing:
                return measurements, measurements[best] if best is not None else None
            for index in missing:
                measurements[index] = self.printed(function, measurements[index], cancel)

    def printed(self, function: StandaloneFunction, measurement: Measurement, cancel: threading.Event | None = None) -> Measurement:
        """The candidate with its printed module, run again in a fresh worker when it has none: that is the
        text written back. Its count is that module's: a pass whose result depends on
        the worker's history (gvn-sink) may have counted otherwise when measured in a reused worker."""
        if measurement.output is not None or not measurement.ok:
            return measurement
        again = self.measure(function, Candidate(measurement.passes, measurement.source), cancel, want_output=True)
        if again.ok and again.output is not None:
            return dataclasses.replace(measurement, count=again.count, output=again.output)
        return dataclasses.replace(measurement, count=None, error=again.error or "the module could not be printed", output=None)

    @staticmethod
    def _choose(function: StandaloneFunction, measurements: list[Measurement]) -> FunctionResult:
        original = count_instructions(function.text)
        oz = measurements[0]
        valid = [m for m in measurements if m.ok]
        best = min(valid, key=ranking) if valid else None
        return FunctionResult(function, original, oz, best, tuple(measurements))
