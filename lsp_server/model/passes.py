"""Pass-list text as models write it: dropping the names `opt` does not know.

The pipeline grammar is `compiler.passes` (the one the engine checks every list with); nothing here
trusts the text. The only aim is to turn an answer that names one unknown pass into a usable list instead
of a rejected one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from ..compiler.passes import ADAPTORS, element_name, nested_pipeline, split_pipeline


def normalize_known(names: Collection[str]) -> frozenset[str]:
    """Accept either bare names or `--print-passes` spellings such as `instcombine<...>`."""
    return frozenset(element_name(name) for name in names if name and element_name(name))


@dataclass
class FilterResult:
    passes: str
    dropped: list[str] = field(default_factory=list)

    @property
    def note(self) -> str | None:
        if not self.dropped:
            return None
        unique = list(dict.fromkeys(self.dropped))
        return "dropped unknown passes: " + ", ".join(unique)


def filter_passes(text: str, known: Collection[str] | None) -> FilterResult:
    """Drop pipeline items whose pass name `opt` lacks.

    Top-level items are kept or dropped whole; a nested item such as `function(instcombine,bogus)` keeps
    its adaptor and has its inner list filtered the same way (dropped whole when nothing known is left).
    With `known` None the text is only tidied (whitespace around items removed).
    """
    known_set = normalize_known(known) if known is not None else None
    dropped: list[str] = []

    def walk(pipeline: str) -> str:
        kept: list[str] = []
        for item in split_pipeline(pipeline):
            nested = nested_pipeline(item)
            name = element_name(item)
            if nested is not None:
                head, body = nested
                if known_set is not None and name not in ADAPTORS and name not in known_set:
                    dropped.append(name)
                    continue
                inner = walk(body)
                if inner:
                    kept.append(f"{head.strip()}({inner})")
                continue
            if known_set is not None and name not in known_set:
                dropped.append(name or item)
                continue
            kept.append(item)
        return ",".join(kept)

    return FilterResult(walk(text.strip()), dropped)
