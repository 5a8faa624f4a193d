"""Folding ranges: one per function body, and the metadata block at the end of the module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..session.documents import open_layout
from ..session.positions import Positions

if TYPE_CHECKING:
    from ..server import PassPilotServer


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_FOLDING_RANGE)(folding_ranges)


async def folding_ranges(ls: PassPilotServer, params: types.FoldingRangeParams) -> list[types.FoldingRange] | None:
    opened = open_layout(ls, params.text_document.uri)
    if opened is None:
        return None
    _, text, layout = opened
    positions = Positions.of(ls, text, layout.lines)

    def folding(first: int, last: int) -> types.FoldingRange | None:
        start, end = positions.line_start(first).line, positions.line_end(last).line
        return types.FoldingRange(start_line=start, end_line=end, kind=types.FoldingRangeKind.Region) if end > start else None

    ranges = [folding(span.start_line, span.end_line) for span in layout.functions]
    metadata = [n for n, line in enumerate(layout.lines) if line.startswith("!")]
    if len(metadata) > 1:
        ranges.append(folding(metadata[0], metadata[-1]))
    return [r for r in ranges if r is not None]
