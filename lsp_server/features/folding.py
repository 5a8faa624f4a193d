"""Folding ranges: one per function body, and the metadata block at the end of the module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .documents import open_layout

if TYPE_CHECKING:
    from ..server import PassPilotServer


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_FOLDING_RANGE)(folding_ranges)


async def folding_ranges(ls: PassPilotServer, params: types.FoldingRangeParams) -> list[types.FoldingRange] | None:
    opened = open_layout(ls, params.text_document.uri)
    if opened is None:
        return None
    _, _, layout = opened
    ranges = [
        types.FoldingRange(start_line=span.start_line, end_line=span.end_line, kind=types.FoldingRangeKind.Region)
        for span in layout.functions
        if span.end_line > span.start_line
    ]
    metadata = [n for n, line in enumerate(layout.lines) if line.startswith("!")]
    if len(metadata) > 1:
        ranges.append(types.FoldingRange(start_line=metadata[0], end_line=metadata[-1], kind=types.FoldingRangeKind.Region))
    return ranges
