"""Go to definition and find references for `@globals`, `%locals` (scoped to their function), labels,
`%types`, `#attribute groups`, `!metadata` and `$comdats`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..ir.irtext import Token
from ..session.documents import name_at
from ..session.positions import Positions

if TYPE_CHECKING:
    from ..server import PassPilotServer


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_DEFINITION)(definition)
    server.feature(types.TEXT_DOCUMENT_REFERENCES)(references)


def _location(uri: str, positions: Positions, token: Token) -> types.Location:
    return types.Location(uri=uri, range=positions.range(token.line, token.start, token.end))


async def definition(ls: PassPilotServer, params: types.DefinitionParams) -> list[types.Location] | None:
    at = await name_at(ls, params.text_document.uri, params.position)
    if at is None:
        return None
    target = at.names.definition(at.token)
    return [_location(params.text_document.uri, at.positions, target)] if target is not None else None


async def references(ls: PassPilotServer, params: types.ReferenceParams) -> list[types.Location] | None:
    at = await name_at(ls, params.text_document.uri, params.position)
    if at is None:
        return None
    include = params.context.include_declaration if params.context is not None else True
    return [_location(params.text_document.uri, at.positions, t) for t in at.names.references(at.token, include)]
