"""Measured results per function, and the background worker that produces them.

Results are keyed by the budget and the standalone function text, so an edit to one function re-measures
only that function, and an unchanged function keeps its figures across edits elsewhere. Functions that a
client shows (inlay-hint ranges, hovers) are measured first; the rest of each open document follows in
the background, a few functions per engine call so that foreground jobs (code actions, commands) never
wait long behind it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..engine import DEFAULT_SOURCES, Cancelled, FunctionResult, Optimizer
from ..ir import FunctionSpan, ModuleLayout, StandaloneFunction
from .jobs import Job

if TYPE_CHECKING:
    from ..server import PassPilotServer
    from .documents import DocumentState
    from .engine import EngineState

log = logging.getLogger(__name__)

VISIBLE, HOVERED, BACKGROUND = 0, 0, 1
REFRESH_DELAY_S = 0.25
MAX_RESULTS = 20000

Key = tuple[int, str]
MAX_REWRITES = 2000


@dataclasses.dataclass(frozen=True)
class Rewrite:
    """A function as PassPilot wrote it: the figures measured on it before (the -Oz and best baseline,
    which must not move because -Oz of already optimized IR is smaller) and its count now."""

    baseline: FunctionResult
    count: int


@dataclasses.dataclass(frozen=True)
class Shown:
    """The figures a hint or lens shows for a function of the current text.

    `result`: counts to show (for a function PassPilot rewrote: the count now, -Oz and best of the
    function as written before); `current`: the measurement of exactly this text, if any (actions use it);
    `stale`: the figures are of an older text of the function (the document does not parse, or is not
    analysed yet).
    """

    result: FunctionResult | None
    current: FunctionResult | None
    stale: bool


class Measurements:
    title = "PassPilot: measuring functions"

    def __init__(self, ls: PassPilotServer, engine: EngineState, documents: Mapping[str, DocumentState]):
        """`engine` and `documents` are the server's (updated in place); `ls` runs jobs, asks the client to
        refresh, and holds the settings (a change replaces them: see `budget`)."""
        self.ls = ls
        self.engine = engine
        self.documents = documents
        self.results: dict[Key, FunctionResult] = {}
        self.queue: dict[Key, tuple[int, int, StandaloneFunction, set[str]]] = {}  # key -> (priority, order, fn, uris)
        self.skipped: set[Key] = set()  # cancelled by the user: not re-queued until the text changes
        self._order = itertools.count()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._job: Job | None = None
        self._refresh: asyncio.TimerHandle | None = None
        self._waiters: dict[Key, list[asyncio.Future]] = {}
        self._resetting = False
        self.rewrites: dict[str, Rewrite] = {}  # by the function's text as PassPilot wrote it

    @property
    def budget(self) -> int:
        """The budget of the server's current settings."""
        return self.ls.settings.budget

    # Lookups

    def key(self, function: StandaloneFunction, budget: int | None = None) -> Key:
        return (self.budget if budget is None else budget, function.text)

    def get(self, function: StandaloneFunction) -> FunctionResult | None:
        return self.results.get(self.key(function))

    def remember_rewrite(self, old_function_text: str, new_function_text: str, result: FunctionResult, count: int) -> None:
        """PassPilot rewrote a function: keep the baseline of the function as first written (a second
        rewrite keeps the first one's), so that its -Oz and best figures stay put."""
        earlier = self.rewrites.get(old_function_text)
        if len(self.rewrites) >= MAX_REWRITES:
            for old in list(self.rewrites)[: MAX_REWRITES // 4]:
                del self.rewrites[old]
        self.rewrites[new_function_text] = Rewrite(earlier.baseline if earlier else result, count)

    def shown(self, state: DocumentState, layout: ModuleLayout, span: FunctionSpan) -> Shown:
        """What a hint or lens shows for `span` of the current text `layout`."""
        text = layout.function_text(span)
        good = state.good
        good_span = good.layout.function(span.name) if good is not None else None
        fresh = good is not None and (good.layout is layout or (good_span is not None and good.layout.function_text(good_span) == text))
        function = state.standalone(span)
        current = self.get(function) if function is not None and fresh else None
        rewrite = self.rewrites.get(text)
        if rewrite is not None:
            count = current.original if current is not None else rewrite.count
            return Shown(dataclasses.replace(rewrite.baseline, original=count), current, False)
        if fresh:
            return Shown(current, current, False)
        old = self.get(function) if function is not None else None
        return Shown(old, None, old is not None)

    def store(self, key: Key, result: FunctionResult) -> None:
        if len(self.results) >= MAX_RESULTS:
            for old in list(self.results)[: MAX_RESULTS // 4]:
                del self.results[old]
        # Only the printed modules of -Oz and the best candidate can be written back; drop the others.
        keep = {id(result.oz), id(result.best)}
        slim = tuple(m if id(m) in keep or m.output is None else dataclasses.replace(m, output=None) for m in result.measurements)
        result = dataclasses.replace(result, measurements=slim)
        self.results[key] = result
        for waiter in self._waiters.pop(key, []):
            if not waiter.done():
                waiter.set_result(result)

    def remember_search(self, function: StandaloneFunction, result: FunctionResult, generation: int) -> None:
        """A deep search's result becomes the function's figures when it is no worse than what the
        budget found (loop thread; the result of an engine that was replaced since is dropped)."""
        if generation != self.engine.generation or result.best is None or not result.best.ok:
            return
        key = self.key(function)
        known = self.results.get(key)
        if known is not None and known.best is not None and known.best.ok and known.best.count < result.best.count:
            return
        self.store(key, result)
        self.queue.pop(key, None)
        self.refresh_hints()

    # Queueing

    def document_changed(self, uri: str, functions: Sequence[StandaloneFunction]) -> None:
        """A document's valid text: queue its functions that have no result yet (document order)."""
        wanted = {self.key(f) for f in functions}
        for key, (_, _, _, uris) in list(self.queue.items()):
            if key not in wanted:
                uris.discard(uri)
                if not uris and key not in self._waiters:
                    del self.queue[key]
        self.enqueue(functions, BACKGROUND, uri, force=True)  # an edit resumes work the user cancelled

    def enqueue(self, functions: Sequence[StandaloneFunction], priority: int, uri: str | None = None, *, force: bool = False) -> None:
        if not self.engine.ready:
            return
        for function in functions:
            key = self.key(function)
            if key in self.results or (key in self.skipped and not force):
                continue
            self.skipped.discard(key)
            current = self.queue.get(key)
            if current is None:
                self.queue[key] = (priority, next(self._order), function, {uri} if uri else set())
            else:
                uris = current[3] | ({uri} if uri else set())
                if priority < current[0]:
                    self.queue[key] = (priority, next(self._order), function, uris)
                else:
                    self.queue[key] = (current[0], current[1], function, uris)
        if self.queue:
            self._ensure_worker()

    async def wait_for(self, function: StandaloneFunction, timeout: float) -> FunctionResult | None:
        """Queue a function first in line and wait a little for its result."""
        key = self.key(function)
        if key in self.results:
            return self.results[key]
        self.enqueue([function], HOVERED, force=True)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(waiter)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[key]

    def forget(self, uri: str) -> None:
        for key, (_, _, _, uris) in list(self.queue.items()):
            uris.discard(uri)
            if not uris and key not in self._waiters:
                del self.queue[key]

    def reset(self, *, engine_changed: bool) -> None:
        """Settings changed: drop queued work (and, for a new engine, every result), requeue open documents."""
        self.queue.clear()
        self.skipped.clear()
        if engine_changed:
            self.results.clear()
        if self._job is not None:
            self._resetting = True
            self._job.request_cancel()
        for state in list(self.documents.values()):
            if state.good is not None and state.good.functions:
                self.enqueue([state.good.functions[s.name] for s in state.good.layout.functions if s.name in state.good.functions], BACKGROUND, state.uri)
        self.refresh_hints()

    def close(self) -> None:
        if self._job is not None:
            self._job.cancel.set()
        self.queue.clear()
        if self._worker is not None:
            self._worker.cancel()

    # Foreground

    async def measure(self, functions: Sequence[StandaloneFunction], job: Job) -> list[FunctionResult]:
        """Measure now (for a command or code action), reusing results already there."""
        optimizer = self.engine.optimizer
        if optimizer is None:
            raise RuntimeError(self.engine.error or "the engine is not ready")
        budget = self.budget
        generation = self.engine.generation
        known = {self.key(f, budget): self.results[self.key(f, budget)] for f in functions if self.key(f, budget) in self.results}
        missing = [f for f in functions if self.key(f, budget) not in known]
        if missing:
            results = await job.run(_optimize, optimizer, missing, budget, job.cancel, job.report)
            for function, result in zip(missing, results):
                known[self.key(function, budget)] = result
                if generation == self.engine.generation:
                    self.store(self.key(function, budget), result)
                    self.queue.pop(self.key(function, budget), None)
            self.refresh_hints()
        # A result is shared by every function with the same standalone text, which does not show the
        # linkage: hand back each result with the caller's own extraction, which splicing relies on.
        return [dataclasses.replace(known[self.key(f, budget)], function=f) for f in functions]

    # Background

    def _ensure_worker(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._work())

    def _batch(self) -> list[tuple[Key, StandaloneFunction]]:
        optimizer = self.engine.optimizer
        jobs = optimizer.jobs if optimizer else 1
        size = max(1, math.ceil(2 * jobs / (self.budget + 1)))
        ordered = sorted(self.queue.items(), key=lambda item: (item[1][0], item[1][1]))
        return [(key, entry[2]) for key, entry in ordered[:size]]

    async def _start_job(self) -> Job:
        if self._job is None:
            self._job = Job(self.ls, self.title, follow_request=False, background=True)
            await self._job.__aenter__()
        return self._job

    async def _end_job(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            await job.__aexit__(None, None, None)

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            while self.ls.jobs.foreground:
                await asyncio.sleep(0.05)  # a command or code action is measuring: let it have the cores
            if not self.queue or not self.engine.ready:
                self._wake.clear()
                await self._end_job()
                await self._wake.wait()
                continue
            job = await self._start_job()
            batch = self._batch()
            budget = self.budget
            generation = self.engine.generation
            left = len(self.queue)
            job.set_message(f"{left} function{'s' if left != 1 else ''} to measure")
            try:
                results = await job.run(_optimize, self.engine.optimizer, [f for _, f in batch], budget, job.cancel, None)
            except Cancelled:
                await self._end_job()
                if self._resetting:
                    self._resetting = False  # settings changed: the queue already holds the new work
                else:
                    self.skipped.update(self.queue)  # the user cancelled: wait for the documents to change
                    self.queue.clear()
                continue
            except Exception:  # noqa: BLE001 - keep the worker alive; drop what failed
                log.exception("background measurement failed")
                for key, _ in batch:
                    self.queue.pop(key, None)
                    self.skipped.add(key)
                continue
            if generation != self.engine.generation or budget != self.budget:
                continue
            for (key, _), result in zip(batch, results):
                self.store(key, result)
                self.queue.pop(key, None)
                figures = result.figures()
                log.info("measured @%s: %s instrs, -Oz %s, best %s (%s)", result.name, figures["original"], figures["oz"], figures["best"], figures["source"])
            self.refresh_hints()

    # Hints

    def refresh_hints(self) -> None:
        """Ask the client to re-request inlay hints and code lenses (coalesced), when it supports that."""
        hints = self.ls.supports("workspace.inlay_hint.refresh_support")
        lenses = self.ls.supports("workspace.code_lens.refresh_support")
        if not (hints or lenses):
            return
        if self._refresh is not None:
            return
        loop = asyncio.get_running_loop()

        def send() -> None:
            self._refresh = None
            if hints:
                self.ls.workspace_inlay_hint_refresh(None).add_done_callback(_ignore_failure)
            if lenses:
                self.ls.workspace_code_lens_refresh(None).add_done_callback(_ignore_failure)

        self._refresh = loop.call_later(REFRESH_DELAY_S, send)


def _ignore_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("inlay hint refresh failed: %s", future.exception())


def _optimize(
    optimizer: Optimizer,
    functions: list[StandaloneFunction],
    budget: int,
    cancel,
    progress: Callable[[int, int], None] | None,
) -> list[FunctionResult]:
    return optimizer.optimize_all(functions, budget=budget, sources=DEFAULT_SOURCES, cancel=cancel, progress=progress)
