"""Go to definition and find references for `@globals`, `%locals` (scoped to their function), labels,
`%types`, `#attribute groups`, `!metadata` and `$comdats`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..ir.irtext import NameIndex, Token
from ..session.documents import open_layout
from ..session.positions import Positions

if TYPE_CHECKING:
    from ..server import PassPilotServer


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_DEFINITION)(definition)
    server.feature(types.TEXT_DOCUMENT_REFERENCES)(references)


async def _token_at(ls: PassPilotServer, uri: str, position: types.Position) -> tuple[NameIndex, Token, Positions] | None:
    opened = open_layout(ls, uri)
    if opened is None:
        return None
    state, text, layout = opened
    positions = Positions.of(ls, text, layout.lines)
    if position.line < 0 or position.line >= positions.client_line_count:
        return None
    line, column = positions.to_ir(position)
    names = await state.names_of(ls, text)
    token = names.at(line, column)
    return (names, token, positions) if token is not None else None


def _location(uri: str, positions: Positions, token: Token) -> types.Location:
    return types.Location(uri=uri, range=positions.range(token.line, token.start, token.end))


async def definition(ls: PassPilotServer, params: types.DefinitionParams) -> list[types.Location] | None:
    found = await _token_at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    names, token, positions = found
    target = names.definition(token)
    return [_location(params.text_document.uri, positions, target)] if target is not None else None


async def references(ls: PassPilotServer, params: types.ReferenceParams) -> list[types.Location] | None:
    found = await _token_at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    names, token, positions = found
    include = params.context.include_declaration if params.context is not None else True
    return [_location(params.text_document.uri, positions, t) for t in names.references(token, include)]
