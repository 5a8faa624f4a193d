"""Pass-list text as models write it: splitting into items and dropping names `opt` does not know.

Nothing here trusts the text: the engine still checks the result with the real `opt`. The only aim is
to turn an answer that names one unknown pass into a usable list instead of a rejected one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

# Pipeline nesting adaptors of the new pass manager. `opt --print-passes` does not list these.
ADAPTORS = frozenset({"module", "cgscc", "function", "loop", "loop-mssa", "repeat", "devirt", "machine-function"})


def split_items(text: str) -> list[str]:
    """Split a pipeline on top-level commas (not inside `<...>` or `(...)`). Empty items are dropped."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char in "(<":
            depth += 1
        elif char in ")>":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


def item_name(item: str) -> str:
    """`instcombine<max-iterations=1>` -> `instcombine`; `function(sroa)` -> `function`."""
    end = len(item)
    for stop in "<(":
        index = item.find(stop)
        if index != -1:
            end = min(end, index)
    return item[:end].strip()


def _split_nested(item: str) -> tuple[str, str] | None:
    """`function<eager-inv>(a,b)` -> (`function<eager-inv>`, `a,b`); None when the item has no body."""
    depth_angle = 0
    for index, char in enumerate(item):
        if char == "<":
            depth_angle += 1
        elif char == ">":
            depth_angle = max(0, depth_angle - 1)
        elif char == "(" and depth_angle == 0:
            if not item.endswith(")"):
                return None
            return item[:index], item[index + 1 : -1]
    return None


def normalize_known(names: Collection[str]) -> frozenset[str]:
    """Accept either bare names or `--print-passes` spellings such as `instcombine<...>`."""
    return frozenset(item_name(name) for name in names if name and item_name(name))


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
        for item in split_items(pipeline):
            nested = _split_nested(item)
            name = item_name(item)
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
