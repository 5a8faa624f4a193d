"""Refinement: the last part of a function's budget goes to edits of the best lists measured before it.

Fixed lists (the model's ranked lists, the coreset) are measured first; then each learned edit rewrites
the smallest result into one new candidate: run it twice, follow it with the runner-up, put a short
pipeline in front of it or after it. This is GRACE's "compile a coreset, then refine the best", cut to a
few calls: the edits and their order are chosen greedily on training functions (`training/refinements.py`)
and shipped in `models/refinements.txt`, one edit per line. A fixed order of lists cannot do this, because
what an edit yields depends on which list won for this function.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..compiler.passes import split_pipeline
from ..ir import StandaloneFunction
from .deep import render, top_level_elements
from .optimizer import Measurement, ranking
from .sources import Candidate, models_dir

# Lists the other sources measure before any edit: the edits are chosen on the best of this many lists
# (`training.refinements --first`), and spent on smaller budgets they lose to those lists.
FIRST_LISTS = 6
WHOLE_EDITS = {
    "twice": "the best list run twice",
    "with-second": "the best list, then the runner-up",
    "second-then": "the runner-up, then the best list",
    "drop-first": "the best list without its first pass",
    "drop-last": "the best list without its last pass",
}
PIPELINE_EDITS = {"append": "after the best list", "prepend": "before the best list"}


@dataclass(frozen=True)
class Edit:
    """One way to rewrite the best list: a name of WHOLE_EDITS, or `append P` / `prepend P` with a pipeline P."""

    kind: str
    passes: str = ""

    @classmethod
    def parse(cls, line: str) -> Edit:
        """An edit from its line in `refinements.txt`; ValueError says what is wrong with it."""
        kind, _, passes = line.strip().partition(" ")
        passes = passes.strip()
        if kind in WHOLE_EDITS:
            if passes:
                raise ValueError(f"edit {kind!r} takes no pass list (got {passes!r})")
            return cls(kind)
        if kind in PIPELINE_EDITS:
            if not passes or " " in passes:
                raise ValueError(f"edit {kind!r} needs one pass list without spaces, as in `{kind} gvn-sink,simplifycfg`")
            return cls(kind, passes)  # its passes are checked with every edited list, against this `opt`
        known = ", ".join([*WHOLE_EDITS, *PIPELINE_EDITS])
        raise ValueError(f"unknown edit {kind!r}; known edits: {known}")

    def __str__(self) -> str:
        return f"{self.kind} {self.passes}" if self.passes else self.kind

    def describe(self) -> str:
        if self.passes:
            return f"{self.passes} {PIPELINE_EDITS[self.kind]}"
        return WHOLE_EDITS[self.kind]

    def apply(self, best: str, second: str | None) -> str | None:
        """The edited list (for `opt -passes=`), or None when the edit has nothing to work on."""
        elements = list(top_level_elements(best))
        if self.kind in ("with-second", "second-then"):
            if second is None:
                return None
            other = list(top_level_elements(second))
            edited = elements + other if self.kind == "with-second" else other + elements
        elif self.kind == "twice":
            edited = elements + elements
        elif self.kind == "drop-first":
            edited = elements[1:]
        elif self.kind == "drop-last":
            edited = elements[:-1]
        else:
            extra = split_pipeline(self.passes)
            edited = elements + extra if self.kind == "append" else extra + elements
        return render(edited) if edited else None


def read_edits(path: Path) -> list[Edit]:
    """The edits of a refinements file (`#` starts a comment); ValueError names the bad line."""
    edits = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            edits.append(Edit.parse(text))
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}") from None
    return edits


def best_and_runner_up(measurements: Sequence[Measurement]) -> tuple[Measurement | None, Measurement | None]:
    """What the edits work on: the best valid measurement by the optimizer's `ranking`, and the next best
    of another list (None where there is none)."""
    ranked = sorted((m for m in measurements if m.ok), key=ranking)
    if not ranked:
        return None, None
    return ranked[0], next((m for m in ranked[1:] if m.passes != ranked[0].passes), None)


class RefineSource:
    """Edits of the smallest list measured so far. The optimizer asks for them after the other sources'
    candidates have been measured (`refinements`), and keeps `reserve(budget)` calls for them."""

    name = "refine"

    def __init__(self, edits: Sequence[Edit], *, first_lists: int = FIRST_LISTS):
        self.edits = list(edits)
        self.first_lists = first_lists

    @classmethod
    def from_file(cls, path: Path) -> RefineSource:
        return cls(read_edits(path) if path.is_file() else [])

    def reserve(self, budget: int) -> int:
        """Calls kept for edits: what the budget has beyond the first lists, up to the number of edits."""
        return max(0, min(len(self.edits), budget - self.first_lists))

    def candidates(self, function: StandaloneFunction, limit: int) -> Iterator[Candidate]:
        return iter(())  # nothing to edit before anything is measured: see `refinements`

    def refinements(self, measurements: Sequence[Measurement]) -> Iterator[Candidate]:
        """Each edit of the best measured list (and of the runner-up), in order."""
        best, second = best_and_runner_up(measurements)
        if best is None:
            return
        for edit in self.edits:
            passes = edit.apply(best.passes, second.passes if second else None)
            if passes is not None:
                yield Candidate(passes, self.name, note=f"{edit.describe()} ({best.source})")


def default_refinements() -> RefineSource:
    return RefineSource.from_file(models_dir() / "refinements.txt")
