"""Where candidate pass lists come from.

A source only proposes; the optimizer checks each list against the vocabulary and measures it with
`opt`. Sources fill the budget in the order the user lists them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..compiler.passes import pipeline_pass_names
from ..ir import StandaloneFunction

log = logging.getLogger(__name__)

OZ = "default<Oz>"
SOURCE_NAMES = ("oz", "model", "coreset", "refine", "search")
# Sources that are not available are skipped. `refine` edits the best list the others found, with the
# part of the budget it reserves (engine.refine), wherever it stands in the list.
DEFAULT_SOURCES = ("model", "coreset", "refine", "search")

# The autotuner's search space: transformation passes that matter for size on typical C code, in the
# spirit of CompilerGym's LLVM action space. Names this `opt` lacks are dropped at start-up. Passes that
# need an adaptor to be valid at module level (LICM needs MemorySSA) carry it.
SEARCH_SPACE = (
    "adce", "aggressive-instcombine", "always-inline", "argpromotion", "bdce", "break-crit-edges",
    "called-value-propagation", "callsite-splitting", "constmerge", "constraint-elimination",
    "correlated-propagation", "dce", "deadargelim", "div-rem-pairs", "dse", "early-cse", "early-cse<memssa>",
    "elim-avail-extern", "flatten-cfg", "float2int", "function-attrs", "globaldce", "globalopt", "gvn",
    "gvn-hoist", "gvn-sink", "indvars", "infer-alignment", "inline", "instcombine", "instsimplify", "ipsccp",
    "jump-threading", "lcssa", "libcalls-shrinkwrap", "function(loop-mssa(licm))", "loop-deletion", "loop-distribute",
    "loop-flatten", "loop-fusion", "loop-idiom", "loop-instsimplify", "loop-load-elim", "loop-reduce",
    "loop-rotate", "loop-simplify", "loop-simplifycfg", "loop-sink", "loop-unroll", "lower-constant-intrinsics",
    "lower-expect", "lower-switch", "mem2reg", "memcpyopt", "mergefunc", "mergeicmps", "mergereturn",
    "mldst-motion", "nary-reassociate", "newgvn", "partial-inliner", "reassociate", "reg2mem",
    "rel-lookup-table-converter", "sccp", "simple-loop-unswitch", "simplifycfg", "sink", "slsr", "speculative-execution",
    "sroa", "tailcallelim", "vector-combine",
)


@dataclass(frozen=True)
class Candidate:
    passes: str  # as proposed: unchecked
    source: str
    predicted_before: int | None = None
    predicted_after: int | None = None
    note: str | None = None


class CandidateSource(Protocol):
    name: str

    def candidates(self, function: StandaloneFunction, limit: int) -> Iterator[Candidate]: ...


class CoresetSource:
    """Pass lists that together win most often on training functions; tried in order."""

    name = "coreset"

    def __init__(self, pass_lists: list[str]):
        self.pass_lists = pass_lists

    @classmethod
    def from_file(cls, path: Path) -> CoresetSource:
        lines = path.read_text().splitlines() if path.is_file() else []
        lists = (line.split("#", 1)[0].strip() for line in lines)  # `#` starts a comment
        return cls([passes for passes in lists if passes])

    def candidates(self, function: StandaloneFunction, limit: int) -> Iterator[Candidate]:
        for passes in self.pass_lists:
            yield Candidate(passes, self.name)


class RandomSearchSource:
    """Blind random search, seeded by the function text so that results are reproducible."""

    name = "search"

    def __init__(self, known_passes: frozenset[str], *, max_length: int = 16, seed: int = 0):
        self.space = search_space(known_passes)
        self.max_length = max_length
        self.seed = seed

    def candidates(self, function: StandaloneFunction, limit: int) -> Iterator[Candidate]:
        digest = hashlib.sha256(f"{self.seed}\0{function.text}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "little"))
        for _ in range(limit * 4):  # duplicates are skipped by the optimizer
            yield Candidate(random_pass_list(rng, self.space, self.max_length), self.name)


def search_space(known_passes: Collection[str]) -> list[str]:
    """The items of SEARCH_SPACE whose passes this `opt` knows (`known_passes`: PassVocabulary.names)."""
    return [item for item in SEARCH_SPACE if all(name in known_passes for name in pipeline_pass_names(item))]


def random_pass_list(rng: random.Random, space: list[str], max_length: int) -> str:
    """1 to `max_length` passes drawn from `space`, after a `default<Oz>` prefix half of the time.

    Without the prefix the list is wrapped in `module(...)`: opt picks a pipeline's level from its first
    pass, so a function pass first would make a later module or CGSCC pass invalid.
    """
    passes = ",".join(rng.choice(space) for _ in range(rng.randint(1, max_length)))
    return f"{OZ},{passes}" if rng.random() < 0.5 else f"module({passes})"


class ModelSource:
    """Pass lists proposed by a model; predictions travel with each candidate for hover and benchmarks."""

    name = "model"

    def __init__(self, proposer, samples: int, *, cache=None, model_key: str = ""):
        self.proposer = proposer
        self.samples = samples
        # Proposals for a function text are kept in the result cache (when there is one), keyed by the
        # model file's identity: a reopened editor or a second run then needs no inference for it.
        self.cache = cache
        self.model_key = model_key

    def candidates(self, function: StandaloneFunction, limit: int) -> Iterator[Candidate]:
        # A ranking model orders all its lists in one pass: the budget is filled in its order (the optimizer
        # skips repeats and -Oz, which it always measures). A generating model draws all its samples even
        # for a smaller budget: a later sample stands in when the greedy answer is invalid or repeats -Oz.
        rows = self._cached(function)
        if rows is None:
            rank = getattr(self.proposer, "rank", None)
            try:
                proposals = rank(function.text) if rank is not None else self.proposer.propose(function.text, max(1, self.samples))
            except Exception as error:  # noqa: BLE001 - a model failure is a source with nothing to say
                log.warning("model proposals failed for %s: %s", function.name, error)
                return
            rows = [[p.passes, p.predicted_before, p.predicted_after, p.note] for p in proposals]
            self._remember(function, rows)
        for passes, before, after, note in rows:
            yield Candidate(passes, self.name, predicted_before=before, predicted_after=after, note=note)

    def _key(self, function: StandaloneFunction) -> str:
        digest = hashlib.sha256("\0".join(["proposals", self.model_key, str(self.samples), function.text]).encode())
        return "model:" + digest.hexdigest()

    def _cached(self, function: StandaloneFunction) -> list | None:
        if self.cache is None or not self.model_key:
            return None
        rows = self.cache.get_value(self._key(function))
        valid = isinstance(rows, list) and all(isinstance(r, list) and len(r) == 4 and isinstance(r[0], str) for r in rows)
        return rows if valid else None

    def _remember(self, function: StandaloneFunction, rows: list) -> None:
        if self.cache is not None and self.model_key:
            self.cache.put_value(self._key(function), rows)


def models_dir() -> Path:
    """The folder of shipped models: PASSPILOT_MODELS, the repository's `models/`, or the installed copy."""
    override = os.environ.get("PASSPILOT_MODELS")
    if override:
        return Path(override)
    repository = Path(__file__).resolve().parents[2] / "models"
    if repository.is_dir():
        return repository
    return Path(sys.prefix) / "share" / "passpilot" / "models"


def default_coreset() -> CoresetSource:
    return CoresetSource.from_file(models_dir() / "coreset.txt")
