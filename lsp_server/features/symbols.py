"""Document symbols: functions (with their basic blocks), declarations and global variables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..session.documents import open_layout
from ..session.positions import Positions

if TYPE_CHECKING:
    from ..server import PassPilotServer


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)(document_symbols)


async def document_symbols(ls: PassPilotServer, params: types.DocumentSymbolParams):
    uri = params.text_document.uri
    opened = open_layout(ls, uri)
    if opened is None:
        return None
    state, text, layout = opened
    names = await state.names_of(ls, text)
    lines = layout.lines
    positions = Positions.of(ls, text, lines)
    symbols: list[types.DocumentSymbol] = []

    def name_range(line: int, token: str) -> types.Range:
        start = max(lines[line].find(token), 0)
        return positions.range(line, start, start + len(token))

    for scope, span in enumerate(layout.functions):
        header_line = next(
            (n for n in range(span.start_line, span.header_end_line + 1) if span.token + "(" in lines[n]), span.start_line
        )
        blocks = []
        for line in range(span.header_end_line + 1, span.end_line):
            for token in names.tokens_by_line.get(line, []):
                if token.kind == "local" and token.definition and token.start == 0 and token.scope == scope:
                    block_range = positions.range(line, 0, token.end)
                    blocks.append(
                        types.DocumentSymbol(
                            name=token.name, kind=types.SymbolKind.Key, range=block_range, selection_range=block_range
                        )
                    )
        symbols.append(
            types.DocumentSymbol(
                name=f"@{span.name}",
                detail="define",
                kind=types.SymbolKind.Function,
                range=types.Range(start=positions.line_start(span.start_line), end=positions.line_end(span.end_line)),
                selection_range=name_range(header_line, span.token),
                children=blocks or None,
            )
        )
    for token, line in layout.declarations.items():
        symbols.append(
            types.DocumentSymbol(
                name=token,
                detail="declare",
                kind=types.SymbolKind.Function,
                range=types.Range(start=positions.line_start(line), end=positions.line_end(line)),
                selection_range=name_range(line, token),
            )
        )
    for token, line in layout.globals.items():
        constant = " constant " in lines[line].split("=", 1)[-1][:80]
        symbols.append(
            types.DocumentSymbol(
                name=token,
                detail="constant" if constant else "global",
                kind=types.SymbolKind.Constant if constant else types.SymbolKind.Variable,
                range=types.Range(start=positions.line_start(line), end=positions.line_end(line)),
                selection_range=name_range(line, token),
            )
        )
    symbols.sort(key=lambda s: (s.range.start.line, s.range.start.character))
    if ls.supports("text_document.document_symbol.hierarchical_document_symbol_support"):
        return symbols
    return [
        types.SymbolInformation(name=s.name, kind=s.kind, location=types.Location(uri=uri, range=s.range))
        for s in symbols
    ]
