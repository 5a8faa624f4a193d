"""Inlay hints: `57 instrs · -Oz 31 · best 27 (−12.9%)` at the end of each `define` line.

Only measured figures are shown: a function without a result yet has no hint (it is queued first in line
and the client is asked to refresh when its figures arrive).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..engine import FunctionResult
from ..session.documents import current_text
from ..session.measure import VISIBLE, Shown
from ..session.positions import Positions

if TYPE_CHECKING:
    from ..server import PassPilotServer

MINUS = "\u2212"


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_INLAY_HINT)(inlay_hints)


def change_text(best: int, oz: int) -> str:
    """`(−12.9%)`-style change of best against -Oz."""
    if best == oz:
        return "±0%"
    percent = 100.0 * (best - oz) / oz if oz else 0.0
    sign = MINUS if best < oz else "+"
    return f"{sign}{abs(percent):.1f}%"


STALE = " (stale)"


def label(result: FunctionResult, stale: bool = False) -> str:
    """The figures; ` (stale)` when they are of an older text of the function (it does not parse yet)."""
    return _figures(result) + (STALE if stale else "")


def _figures(result: FunctionResult) -> str:
    parts = [f"{result.original} instrs"]
    oz = result.oz.count if result.oz.ok else None
    parts.append(f"-Oz {oz}" if oz is not None else "-Oz failed")
    best = result.best
    if best is not None and best.ok:
        parts.append(f"best {best.count} ({change_text(best.count, oz)})" if oz else f"best {best.count}")
    return " · ".join(parts)


def tooltip(result: FunctionResult, budget: int, shown: Shown | None = None) -> str:
    lines = []
    if shown is not None and shown.stale:
        lines.append("stale: figures of the last text that parsed; the function changed since")
    elif shown is not None and shown.current is not result:
        lines.append("optimized by PassPilot: -Oz and best were measured on the function as written before")
    best = result.best
    if best is not None and best.ok:
        lines.append(f"best ({best.source}): {best.passes}")
    if not result.oz.ok:
        lines.append(f"-Oz failed: {result.oz.error}")
    tried = sum(1 for m in result.measurements if m.ok)
    lines.append(f"{tried} pass lists measured with opt (budget {budget})")
    return "\n".join(lines)


async def inlay_hints(ls: PassPilotServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    uri = params.text_document.uri
    state = ls.documents.get(uri)
    if state is None or not ls.engine.ready:
        return []
    text, _ = current_text(ls, uri)
    layout = state.layout_of(text)
    positions = Positions.of(ls, text, layout.lines)
    first, last = positions.ir_lines(params.range)
    state.shown = (first, last)
    hints: list[types.InlayHint] = []
    missing = []
    for span in layout.functions:
        if not first <= span.header_end_line <= last:
            continue
        function = state.standalone(span)
        shown = ls.measurements.shown(state, layout, span)
        if shown.current is None and function is not None and not shown.stale:
            missing.append(function)
        result = shown.result
        if result is None:
            continue
        hints.append(
            types.InlayHint(
                position=positions.line_end(span.header_end_line),
                label=label(result, shown.stale),
                padding_left=True,
                tooltip=tooltip(result, ls.settings.budget, shown),
            )
        )
    if missing:
        ls.measurements.enqueue(missing, VISIBLE, uri)
    return hints
