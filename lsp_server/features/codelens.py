"""Code lenses: the figures and the actions on the line above each `define`, where a long signature
cannot push them off-screen (an inlay hint sits after the `{`).

    70 → -Oz 35 → best 30 (−14.3%)  |  Optimize −14%  |  Diff  |  Passes

The actions are server commands (`passpilot.optimizeFunction`, `passpilot.previewFunction`,
`passpilot.showPassTrace`) with `{uri, function}`, so that every client can run them; the VS Code
extension maps them to its own commands (progress, diff editor, pass explorer). Only measured figures
are shown: a function waiting for its figures gets a `measuring…` lens, so that lenses do not shift the
text when the figures arrive (the client is asked to refresh code lenses then, see measure.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..engine import FunctionResult
from ..session.documents import current_text
from ..session.positions import Positions
from .commands import OPTIMIZE_FUNCTION, PREVIEW_FUNCTION
from .inlay_hints import MINUS, STALE, change_text
from .pass_trace import SHOW_PASS_TRACE

if TYPE_CHECKING:
    from ..server import PassPilotServer

ARROW = "\u2192"
MEASURING = "PassPilot: measuring\u2026"
NO_ACTION = ""  # a lens that only shows text (VS Code draws it unclickable)
SAME = object()  # `lenses_for`: the actions act on the figures shown


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))(code_lens)


def figures(result: FunctionResult) -> str:
    """`70 → -Oz 35 → best 30 (−14.3%)`: as written, after -Oz, best found (change against -Oz)."""
    oz = result.oz.count if result.oz.ok else None
    parts = [str(result.original), f"-Oz {oz}" if oz is not None else "-Oz failed"]
    best = result.best
    if best is not None and best.ok:
        parts.append(f"best {best.count} ({change_text(best.count, oz)})" if oz else f"best {best.count}")
    return f" {ARROW} ".join(parts)


def optimize_title(result: FunctionResult) -> str:
    """`Optimize −14%` (the best list against -Oz, rounded), or `Optimize (-Oz)` when -Oz is the best."""
    best, oz = result.best, result.oz.count if result.oz.ok else None
    if best is None or not best.ok or not oz or best.count >= oz:
        return "Optimize (-Oz)"
    return f"Optimize {MINUS}{round(100 * (oz - best.count) / oz)}%"


def lenses_for(uri: str, name: str, line: types.Range, result: FunctionResult | None, *, stale: bool = False, current: FunctionResult | None | object = SAME) -> list[types.CodeLens]:
    """`result`: the figures to show; `current`: the measurement of the function's current text, which
    the actions act on (none while the figures are stale or PassPilot's rewrite is being measured)."""
    if result is None:
        return [types.CodeLens(range=line, command=types.Command(title=MEASURING, command=NO_ACTION))]
    argument = {"uri": uri, "function": name}
    title = figures(result) + (STALE if stale else "")
    lenses = [types.CodeLens(range=line, command=types.Command(title=title, command=NO_ACTION))]
    result = result if current is SAME else current
    best = result.best if isinstance(result, FunctionResult) else None
    if best is not None and best.ok:
        lenses += [
            types.CodeLens(range=line, command=types.Command(title=optimize_title(result), command=OPTIMIZE_FUNCTION, arguments=[argument])),
            types.CodeLens(range=line, command=types.Command(title="Diff", command=PREVIEW_FUNCTION, arguments=[argument])),
            types.CodeLens(range=line, command=types.Command(title="Passes", command=SHOW_PASS_TRACE, arguments=[argument])),
        ]
    return lenses


async def code_lens(ls: PassPilotServer, params: types.CodeLensParams) -> list[types.CodeLens]:
    uri = params.text_document.uri
    state = ls.documents.get(uri)
    if state is None or not ls.engine.ready:
        return []
    text, _ = current_text(ls, uri)
    layout = state.layout_of(text)
    positions = Positions.of(ls, text, layout.lines)
    lenses: list[types.CodeLens] = []
    for span in layout.functions:
        function = state.standalone(span)
        if function is None:
            continue
        line = positions.range(span.start_line, 0, len(layout.lines[span.start_line].rstrip("\r")))
        shown = ls.measurements.shown(state, layout, span)
        lenses += lenses_for(uri, span.name, line, shown.result, stale=shown.stale, current=shown.current)
    return lenses
