"""Go to definition and find references for `@globals`, `%locals` (scoped to their function), labels,
`%types`, `#attribute groups`, `!metadata` and `$comdats`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .documents import open_layout
from .irtext import NameIndex, Token
from .positions import Columns

if TYPE_CHECKING:
    from ..server import PassPilotServer


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_DEFINITION)(definition)
    server.feature(types.TEXT_DOCUMENT_REFERENCES)(references)


async def _token_at(ls: PassPilotServer, uri: str, position: types.Position) -> tuple[NameIndex, Token, tuple[str, ...]] | None:
    opened = open_layout(ls, uri)
    if opened is None:
        return None
    state, text, layout = opened
    if not 0 <= position.line < len(layout.lines):
        return None
    column = Columns.of(ls).from_client(layout.lines[position.line], position.character)
    names = await state.names_of(ls, text)
    token = names.at(position.line, column)
    return (names, token, layout.lines) if token is not None else None


def _location(ls: PassPilotServer, uri: str, lines: tuple[str, ...], token: Token) -> types.Location:
    return types.Location(uri=uri, range=Columns.of(ls).range(lines, token.line, token.start, token.end))


async def definition(ls: PassPilotServer, params: types.DefinitionParams) -> list[types.Location] | None:
    found = await _token_at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    names, token, lines = found
    target = names.definition(token)
    return [_location(ls, params.text_document.uri, lines, target)] if target is not None else None


async def references(ls: PassPilotServer, params: types.ReferenceParams) -> list[types.Location] | None:
    found = await _token_at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    names, token, lines = found
    include = params.context.include_declaration if params.context is not None else True
    return [_location(ls, params.text_document.uri, lines, t) for t in names.references(token, include)]
