"""Measure candidate pass lists with `opt` and keep the smallest result.

-Oz is always measured and is the reference: the best result is never larger than it, because -Oz is a
candidate and ties go to -Oz. The budget counts `opt` calls beyond -Oz.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from ..compiler import OptTool, PassListError, PassVocabulary, load_vocabulary, run_opt
from ..compiler.runner import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S
from ..ir import InvalidIR, StandaloneFunction, count_instructions
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


class Cancelled(Exception):
    pass


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
    ):
        self.opt = opt
        self.vocabulary = vocabulary or load_vocabulary(opt)
        self.sources = {source.name: source for source in sources}
        self.cache = cache
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.jobs = jobs or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="passpilot-opt")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.cache is not None:
            self.cache.close()

    def available_sources(self) -> list[str]:
        return ["oz", *self.sources]

    def measure(self, function: StandaloneFunction, candidate: Candidate, cancel: threading.Event | None = None) -> Measurement:
        """Run one checked pass list through `opt` and count the result (or say why there is none)."""
        details = {
            "predicted_before": candidate.predicted_before,
            "predicted_after": candidate.predicted_after,
            "note": candidate.note,
        }
        try:
            passes = self.vocabulary.check(candidate.passes)
        except PassListError as error:
            return Measurement(candidate.passes, candidate.source, None, f"rejected: {error}", **details)
        key = cache_key(self.opt.version, function.text, passes)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return Measurement(passes, candidate.source, hit["count"], hit["error"], hit["output"], cached=True, **details)
        run = run_opt(self.opt, passes, function.text, timeout=self.timeout, memory_mb=self.memory_mb, cancel=cancel)
        count, error = None, run.error
        if run.ok:
            try:
                count = count_instructions(run.output)
                if function.token not in run.output:
                    count, error = None, "the function disappeared from opt's output"
            except InvalidIR as invalid:
                error = f"opt printed IR that does not parse: {invalid}"
        output = run.output if count is not None else None
        transient = error is not None and ("timed out" in error or error == "cancelled" or "could not start" in error)
        if self.cache is not None and not transient:
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
        """Plan and measure candidates for many functions at once so that every core stays busy."""
        unknown = [s for s in sources if s != "oz" and s not in self.sources]
        if unknown:
            log.info("candidate sources not available here, skipped: %s", ", ".join(unknown))
        planned: list[list[Future[Measurement]]] = []
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

        for function in functions:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            futures = []
            for candidate in self._plan(function, budget, sources):
                future = self._pool.submit(self._measure_or_reject, function, candidate, cancel)
                total += 1
                future.add_done_callback(finished)
                futures.append(future)
            planned.append(futures)

        results = []
        for function, futures in zip(functions, planned):
            measurements = [future.result() for future in futures]
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            results.append(self._choose(function, measurements))
        return results

    def _measure_or_reject(self, function: StandaloneFunction, candidate: Candidate, cancel) -> Measurement:
        if cancel is not None and cancel.is_set():
            return Measurement(candidate.passes, candidate.source, None, "cancelled")
        return self.measure(function, candidate, cancel)

    def _plan(self, function: StandaloneFunction, budget: int, sources: Sequence[str]) -> list[Candidate]:
        """-Oz plus up to `budget` distinct valid lists, filled from the sources in order."""
        plan = [Candidate(OZ, "oz")]
        seen = {OZ}
        remaining = budget
        for name in sources:
            source = self.sources.get(name)
            if source is None or remaining <= 0:
                continue
            for candidate in source.candidates(function, remaining):
                if remaining <= 0:
                    break
                try:
                    normalized = self.vocabulary.check(candidate.passes)
                except PassListError:
                    plan.append(candidate)  # measured as a rejection: costs no opt call
                    continue
                if normalized in seen:
                    continue
                seen.add(normalized)
                plan.append(candidate)
                remaining -= 1
        return plan

    @staticmethod
    def _choose(function: StandaloneFunction, measurements: list[Measurement]) -> FunctionResult:
        original = count_instructions(function.text)
        oz = measurements[0]
        valid = [m for m in measurements if m.ok]
        best = min(valid, key=lambda m: (m.count, m.source != "oz", m.length)) if valid else None
        return FunctionResult(function, original, oz, best, tuple(measurements))
