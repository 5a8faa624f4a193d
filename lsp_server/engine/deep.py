"""Deep search: the smallest pass list for one function that a time (and optionally a call) budget finds.

It measures -Oz, the model's proposals and the learned coreset first, then refines around the best lists
found: it drops, inserts, replaces and swaps passes, changes their parameters, truncates lists, splices
pieces of other good lists in, explores random lists once refinement stalls, and asks the model for more
samples while they help (docs/design.md, "Deep search", says why). Refined lists are sequences of
top-level elements (a pass, an adaptor such as `function(loop-mssa(licm))`, or `default<Oz>`) written as
`module(e1,...,en)`, or as `default<Oz>,e2,...,en` when they start with -Oz; every element is valid at
module level because `opt` adapts function passes itself.

Candidates are planned and measured in batches; a batch is planned from the seed and the results of the
batches before it, never from timing, so a search bounded by calls is reproducible and one bounded by
time differs only in where it stops. No normalized list is measured twice. The search stops at the
deadline, at the call bound, on cancel, when the best count has not improved for as many calls as it
took to reach it (and at least `patience`), or when refinement finds nothing new to try.

On cancel the best result found so far is returned (`stopped == "cancelled"`); `Cancelled` is raised
only when cancellation comes before -Oz was measured, when there is nothing to return.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..compiler import PassListError
from ..compiler.passes import PassVocabulary, element_name, nested_pipeline, split_pipeline
from ..ir import StandaloneFunction, count_instructions
from .optimizer import Cancelled, FunctionResult, Measurement, Optimizer, ranking
from .sources import OZ, Candidate, ModelSource, random_pass_list, search_space

log = logging.getLogger(__name__)

DeepProgress = Callable[[int, int, float], None]  # (candidates tried, best count, seconds)
Genome = tuple[str, ...]  # top-level elements of a pass list

STOP_REASONS = ("deadline", "calls", "cancelled", "converged", "exhausted")
MODEL_ROUND_BATCHES = 16  # refinement batches between two requests for more model samples
MODEL_SEED_STRIDE = 1000  # apart from the seeds of the model's first samples
FIRST_STARTING_LISTS = 32  # starting lists measured before refinement shares the batches with them
EXPLORERS = 4  # lists of random descent kept apart from the population, so that another basin gets refined
NUMERIC_VALUES = (1, 2, 4, 8)  # tried for numeric pass parameters
RANDOM_LIST_LENGTH = 16  # at most, as RandomSearchSource draws them
SEED_SOURCES = ("model", "coreset")  # where the lists refinement starts from come from, in this order


@dataclass(frozen=True)
class DeepOptions:
    """Bounds and shape of one function's search. Every default of the deep search lives here."""

    seconds: float = 10.0  # per function
    calls: int = 0  # candidates measured beyond -Oz (0: no bound)
    seed: int = 0
    batch: int = 16  # candidates measured together; fixed so that the plan does not depend on the core count
    population: int = 8  # distinct lists kept for refinement in each niche (with and without -Oz)
    patience: int = 2000  # calls without a smaller best before the search counts as converged (at least)
    max_length: int = 32  # elements in a refined list
    sources: tuple[str, ...] = SEED_SOURCES  # starting lists, from those the optimizer has


@dataclass(frozen=True)
class Improvement:
    """A moment the best count went down: what the progress display and the gain-over-time plot show."""

    seconds: float
    tried: int
    count: int
    source: str


@dataclass(frozen=True)
class DeepResult(FunctionResult):
    """A FunctionResult (write-back, hover and the CLI take it as one) with the search's figures."""

    tried: int  # candidates measured beyond -Oz
    seconds: float
    improvements: tuple[Improvement, ...]
    stopped: str  # one of STOP_REASONS
    seed: int

    @property
    def winner_source(self) -> str | None:
        """"oz", "model", "coreset", or "search (refined from coreset)" and the like."""
        return self.best.source if self.best else None

    def search_figures(self) -> dict:
        return {
            "tried": self.tried,
            "seconds": round(self.seconds, 3),
            "stopped": self.stopped,
            "seed": self.seed,
            "winner_source": self.winner_source,
            "improvements": [
                {"seconds": round(i.seconds, 3), "tried": i.tried, "count": i.count, "source": i.source} for i in self.improvements
            ],
        }


def refined_source(root: str) -> str:
    """How a refined list's origin reads: "search" for random lists and their refinements."""
    return "search" if root == "search" else f"search (refined from {root})"


def top_level_elements(pipeline: str) -> Genome:
    """The top-level elements of a checked pass list; an outer `module(...)` is unwrapped."""
    elements = split_pipeline(pipeline)
    if len(elements) == 1:
        nested = nested_pipeline(elements[0])
        if nested is not None and nested[0] == "module":
            return top_level_elements(nested[1])
    return tuple(elements)


def render(genome: Sequence[str]) -> str:
    """One `-passes=` value for a list of elements (see the module docstring)."""
    if genome[0] == OZ:
        return ",".join(genome)
    return f"module({','.join(genome)})"


def pass_parameters(vocabulary: PassVocabulary, elements: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The parameters the parameter mutation may give the passes among `elements`: their flags
    (`no-speculate-blocks`) and their numeric settings at a few values (`max-iterations=4`)."""
    parameters = {}
    for name in sorted({element_name(element) for element in elements} - {"default"}):
        spec = vocabulary.passes.get(name)
        options = sorted(option for option in spec.options if "verify" not in option) if spec else []  # checks only fail
        choices = []
        for option in options:
            choices += [f"{option}{value}" for value in NUMERIC_VALUES] if option.endswith("=") else [option]
        if choices:
            parameters[name] = tuple(choices)
    return parameters


def _samples_more(model) -> bool:
    """A generating model can be asked for more samples; a ranking model gave all its lists at once."""
    return isinstance(model, ModelSource) and not hasattr(model.proposer, "rank")


@dataclass(frozen=True)
class _Member:
    genome: Genome
    measurement: Measurement
    root: str  # "oz", "model", "coreset" or "search" (a random list): where its lineage started
    serial: int  # measured as the serial-th candidate

    @property
    def order(self) -> tuple[int, int]:
        """Smaller counts first, and among equal counts the newest: refinement drifts across plateaus."""
        return (self.measurement.count, -self.serial)


class _Search:
    """The state of one function's search; plans batches, absorbs their results."""

    MUTATIONS = ("drop", "insert", "replace", "swap", "truncate", "splice", "oz-prefix", "parameter")
    WEIGHTS = (3, 3, 3, 1, 1, 2, 1, 2)
    OTHER_NICHE = 0.4  # share of parents from the niche that does not hold the best list
    EXPLORE = 0.25  # share of refinement candidates that explore once refinement stalls: half fresh random
    EXPLORE_AFTER = 256  # lists, half refinements of the best random ones; stalled: calls without a smaller best

    def __init__(
        self,
        optimizer: Optimizer,
        function: StandaloneFunction,
        options: DeepOptions,
        elements: list[str],
        parameters: dict[str, tuple[str, ...]],
    ):
        self.optimizer = optimizer
        self.function = function
        self.options = options
        digest = hashlib.sha256(f"{options.seed}\0{function.text}".encode()).digest()
        self.rng = random.Random(int.from_bytes(digest[:8], "little"))
        self.elements = list(elements)
        self.parameters = parameters
        self.known_elements = set(elements)
        self.seen: set[str] = set()  # normalized lists measured or planned, and raw lists rejected
        self.measurements: list[Measurement] = []
        self.niches: dict[bool, list[_Member]] = {True: [], False: []}  # lists with and without -Oz in them
        self.explorers: list[_Member] = []  # the best lists descended from random ones, refined apart
        self.starting: list[tuple[Candidate, str]] = []  # (candidate, root), planned before anything else
        self.neighbours: list[tuple[Candidate, str]] = []  # of the latest best, planned before mutations
        self.started = 0  # starting lists planned so far
        self.best: _Member | None = None  # by the optimizer's ranking
        self.space = search_space(optimizer.vocabulary.names)
        self.tried = 0
        self.tried_at_improvement = 0
        self.improvements: list[Improvement] = []
        self.model_entered = 0  # model proposals that entered the population: is asking for more worth it?

    # planning -----------------------------------------------------------------------------------------

    def add_starting_lists(self, candidates: Iterable[Candidate]) -> None:
        self.starting.extend((candidate, candidate.source) for candidate in candidates)

    def plan(self, size: int) -> list[tuple[Candidate, str, Genome | None]]:
        """Up to `size` unseen candidates: starting lists and queued neighbours first, then mutations. After
        the first FIRST_STARTING_LISTS starting lists, they fill at most half of a batch, so that refinement
        starts even when a ranking model orders hundreds of lists."""
        planned: list[tuple[Candidate, str, Genome | None]] = []
        share = size if self.started < FIRST_STARTING_LISTS else max(1, size // 2)
        self.started += self._take(self.starting, planned, share)
        self._take(self.neighbours, planned, size)
        attempts = 0
        while len(planned) < size and self.best is not None and attempts < 50 * size:
            attempts += 1
            draw = self.rng.random()
            explore = self.EXPLORE if self.tried - self.tried_at_improvement >= self.EXPLORE_AFTER else 0.0
            if draw < explore / 2 or (draw < explore and not self.explorers):
                root, child = "search", top_level_elements(random_pass_list(self.rng, self.space, RANDOM_LIST_LENGTH))
            else:
                parent = self._parent(self.explorers if draw < explore else self._niche_to_refine())
                root = parent.root
                child = self._mutate(self.rng.choices(self.MUTATIONS, self.WEIGHTS)[0], parent.genome)
            if child is None:
                continue
            try:
                normalized = self.optimizer.vocabulary.check(render(child))
            except PassListError:
                continue
            if normalized in self.seen:
                continue
            self.seen.add(normalized)
            planned.append((Candidate(render(child), refined_source(root)), root, child))
        return planned

    @property
    def population(self) -> list[_Member]:
        """Every list kept for refinement: what mutations draw elements and pieces from."""
        return self.niches[True] + self.niches[False] + self.explorers

    @staticmethod
    def _niche(genome: Genome) -> bool:
        return OZ in genome

    def _niche_to_refine(self) -> list[_Member]:
        """Mostly the niche of the best list; the other one often enough to keep its basin alive."""
        home = self._niche(self.best.genome)
        if not self.niches[home] or (self.niches[not home] and self.rng.random() < self.OTHER_NICHE):
            return self.niches[not home]
        return self.niches[home]

    def _take(self, queue: list[tuple[Candidate, str]], planned: list, limit: int) -> int:
        """Move queued candidates into `planned` until it holds `limit`; returns how many left the queue."""
        taken = 0
        while taken < len(queue) and len(planned) < limit:
            candidate, root = queue[taken]
            taken += 1
            try:
                normalized = self.optimizer.vocabulary.check(candidate.passes)
            except PassListError:
                if candidate.passes not in self.seen:  # measured as a rejection: costs no compiler call
                    self.seen.add(candidate.passes)
                    planned.append((candidate, root, None))
                continue
            if normalized not in self.seen:
                self.seen.add(normalized)
                planned.append((candidate, root, top_level_elements(normalized)))
        del queue[:taken]
        return taken

    def _parent(self, population: list[_Member]) -> _Member:
        """The head half of the time, else any member, favouring better ones."""
        if self.rng.random() < 0.5:
            return population[0]
        return population[int(len(population) * self.rng.random() ** 2)]

    def _element(self) -> str:
        """An element of a good list half of the time (what worked may work elsewhere), else any."""
        if self.rng.random() < 0.5:
            donor = self.rng.choice(self.population).genome
            return self.rng.choice(donor)
        return self.rng.choice(self.elements)

    def _mutate(self, mutation: str, genome: Genome) -> Genome | None:
        rng = self.rng
        n = len(genome)
        if mutation == "drop" and n > 1:
            i = rng.randrange(n)
            return genome[:i] + genome[i + 1 :]
        if mutation == "insert" and n < self.options.max_length:
            i = rng.randrange(n + 1)
            return genome[:i] + (self._element(),) + genome[i:]
        if mutation == "replace":
            i = rng.randrange(n)
            return genome[:i] + (self._element(),) + genome[i + 1 :]
        if mutation == "swap" and n > 1:
            i = rng.randrange(n - 1)
            j = i + 1 if rng.random() < 0.5 else rng.randrange(n)
            swapped = list(genome)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            return tuple(swapped)
        if mutation == "truncate" and n > 1:
            return genome[: rng.randrange(1, n)]
        if mutation == "splice" and len(self.population) > 1:
            donor = rng.choice(self.population).genome
            start = rng.randrange(len(donor))
            piece = donor[start : start + rng.randint(1, min(6, len(donor) - start))]
            i = rng.randrange(n + 1)
            replaced = len(piece) if rng.random() < 0.5 else 0
            spliced = genome[:i] + piece + genome[i + replaced :]
            return spliced[: self.options.max_length]
        if mutation == "parameter":  # another parameter of a pass (`simplifycfg<no-speculate-blocks>`), or none
            tunable = [i for i, element in enumerate(genome) if element_name(element) in self.parameters and "(" not in element]
            if not tunable:
                return None
            i = rng.choice(tunable)
            name = element_name(genome[i])
            parameter = rng.choice((None, *self.parameters[name]))
            return genome[:i] + (name if parameter is None else f"{name}<{parameter}>",) + genome[i + 1 :]
        if mutation == "oz-prefix":
            return genome[1:] if genome[0] == OZ and n > 1 else (OZ, *genome)[: self.options.max_length]
        return None

    # results ------------------------------------------------------------------------------------------

    def absorb(self, planned: list[tuple[Candidate, str, Genome | None]], results: list[Measurement | None], seconds: float) -> None:
        """Take a batch's results in planning order; None marks a candidate never run (deadline, cancel)."""
        improved = False
        for (candidate, root, genome), measurement in zip(planned, results):
            if measurement is None or measurement.error == "cancelled":
                continue
            measurement = dataclasses.replace(measurement, output=None)
            self.measurements.append(measurement)
            if measurement.rejected:
                continue
            self.tried += 1
            if not measurement.ok or genome is None:
                continue
            self._learn_elements(genome)
            member = _Member(genome, measurement, root, self.tried)
            entered = self._enter(self.niches[self._niche(genome)], member, self.options.population)
            if entered and measurement.source == "model":
                self.model_entered += 1
            if root == "search":
                self._enter(self.explorers, member, EXPLORERS)
            if self.best is None or ranking(measurement) < ranking(self.best.measurement):
                if self.best is None or measurement.count < self.best.measurement.count:
                    self.tried_at_improvement = self.tried
                    self.improvements.append(Improvement(seconds, self.tried, measurement.count, measurement.source))
                self.best = member
                improved = True
        if improved:
            self._queue_drops(self.best)

    def start(self, oz: Measurement, seconds: float) -> None:
        """-Oz, measured first: the reference every other list must beat."""
        self.seen.add(oz.passes)
        self.measurements.append(oz)
        if oz.ok:
            self.best = _Member((OZ,), oz, "oz", 0)
            self.niches[True].append(self.best)
            self.improvements.append(Improvement(seconds, 0, oz.count, "oz"))

    def _learn_elements(self, genome: Genome) -> None:
        for element in genome:
            if element not in self.known_elements:
                self.known_elements.add(element)
                self.elements.append(element)

    @staticmethod
    def _enter(population: list[_Member], member: _Member, size: int) -> bool:
        if len(population) >= size and member.order >= population[-1].order:
            return False
        population.append(member)
        population.sort(key=lambda m: m.order)
        del population[size:]
        return True

    def _queue_drops(self, best: _Member) -> None:
        """Every one-element-shorter list of a new best: they often tie (a shorter winner) or win."""
        if best.root == "oz" and best.genome == (OZ,):
            return
        source = refined_source(best.root)
        genome = best.genome
        drops = [genome[:i] + genome[i + 1 :] for i in range(len(genome))] if len(genome) > 1 else []
        self.neighbours = [(Candidate(render(child), source), best.root) for child in drops]

    def converged(self) -> bool:
        since = self.tried - self.tried_at_improvement
        return since >= max(self.options.patience, self.tried_at_improvement)


class DeepSearch:
    """Runs deep searches with one optimizer, one function at a time, each on all of its jobs."""

    def __init__(self, optimizer: Optimizer, options: DeepOptions = DeepOptions()):
        self.optimizer = optimizer
        self.options = options
        self._elements = [*search_space(optimizer.vocabulary.names), OZ]
        self._parameters = pass_parameters(optimizer.vocabulary, self._elements)
        self._pool = ThreadPoolExecutor(max_workers=optimizer.jobs, thread_name_prefix="passpilot-deep")

    def close(self) -> None:
        """Stops this search's threads (the optimizer stays open: its owner closes it)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DeepSearch:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def optimize_all(
        self, functions: Sequence[StandaloneFunction], *, cancel: threading.Event | None = None, progress: DeepProgress | None = None
    ) -> list[DeepResult]:
        """Functions one after another, each for the full time; raises Cancelled if cancel comes before a
        function's -Oz was measured (the functions before it are then lost too: cancel means stop)."""
        return [self.search(function, cancel=cancel, progress=progress) for function in functions]

    def search(
        self, function: StandaloneFunction, *, cancel: threading.Event | None = None, progress: DeepProgress | None = None
    ) -> DeepResult:
        options = self.options
        started = time.monotonic()
        deadline = started + options.seconds
        search = _Search(self.optimizer, function, options, self._elements, self._parameters)
        original = count_instructions(function.text)

        if cancel is not None and cancel.is_set():
            raise Cancelled()
        oz = self.optimizer.measure(function, Candidate(OZ, "oz"), cancel, want_output=True)
        if oz.error == "cancelled" or (cancel is not None and cancel.is_set()):
            raise Cancelled()
        search.start(oz, time.monotonic() - started)
        search.add_starting_lists(self._starting_lists(function))

        stopped = self._run(search, function, cancel, deadline, lambda: time.monotonic() - started, original, progress)
        measurements, best = self.optimizer.best_printed(function, search.measurements)
        return DeepResult(
            function=function,
            original=original,
            oz=measurements[0],
            best=best,
            measurements=tuple(measurements),
            tried=search.tried,
            seconds=time.monotonic() - started,
            improvements=tuple(search.improvements),
            stopped=stopped,
            seed=options.seed,
        )

    def _run(self, search: _Search, function: StandaloneFunction, cancel, deadline: float, clock, original: int, progress) -> str:
        """Measure batches until a reason to stop; returns it. Each batch is planned from the results of all
        the batches before it."""
        options = self.options
        model = self.optimizer.sources.get("model") if "model" in options.sources else None
        model_rounds = batches = model_entered = 0
        while True:
            reason = self._reason_to_stop(search, cancel, deadline)
            if reason is not None:
                return reason
            if _samples_more(model) and batches and batches % MODEL_ROUND_BATCHES == 0:
                if model_rounds and search.model_entered == model_entered:
                    model = None  # the last samples did no better than refinement: stop asking
                else:
                    model_rounds += 1
                    model_entered = search.model_entered
                    search.add_starting_lists(self._model_samples(model, function, model_rounds))
            batches += 1
            size = min(options.batch, options.calls - search.tried) if options.calls else options.batch
            planned = search.plan(size)
            if not planned:
                return "exhausted"
            futures = [self._pool.submit(self._measure, function, candidate, cancel, deadline) for candidate, _, _ in planned]
            results = [future.result() for future in futures]
            search.absorb(planned, results, clock())
            if progress is not None:
                progress(search.tried, search.best.measurement.count if search.best else original, clock())
            if any(result is None for result in results):  # the deadline or cancel came during the batch
                return "cancelled" if cancel is not None and cancel.is_set() else "deadline"

    def _reason_to_stop(self, search: _Search, cancel, deadline: float) -> str | None:
        if cancel is not None and cancel.is_set():
            return "cancelled"
        if time.monotonic() >= deadline:
            return "deadline"
        if self.options.calls and search.tried >= self.options.calls:
            return "calls"
        if search.converged():
            return "converged"
        return None

    def _starting_lists(self, function: StandaloneFunction) -> list[Candidate]:
        """The model's proposals, then the coreset, as far as the optimizer has those sources."""
        lists: list[Candidate] = []
        for name in self.options.sources:
            source = self.optimizer.sources.get(name)
            if source is not None:
                lists.extend(source.candidates(function, 1 << 16))  # every list it has
        return lists

    def _model_samples(self, model: ModelSource, function: StandaloneFunction, round_number: int) -> list[Candidate]:
        """More temperature samples from the model, with seeds of their own for each round."""
        seed = self.options.seed + MODEL_SEED_STRIDE * round_number
        try:
            proposals = model.proposer.propose(function.text, model.samples + 1, seed=seed)
        except Exception as error:  # noqa: BLE001 - a model failure leaves refinement to go on alone
            log.warning("model samples failed for %s: %s", function.name, error)
            return []
        return [Candidate(p.passes, "model", p.predicted_before, p.predicted_after, p.note) for p in proposals]

    def _measure(self, function: StandaloneFunction, candidate: Candidate, cancel, deadline: float) -> Measurement | None:
        if (cancel is not None and cancel.is_set()) or time.monotonic() >= deadline:
            return None
        return self.optimizer.measure(function, candidate, cancel)

