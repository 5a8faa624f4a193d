"""Document sync: `didOpen`, `didChange` (debounced) and `didClose` keep the document store
(session/documents.py) in step with the client's documents."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..session.documents import DocumentState, is_open, schedule

if TYPE_CHECKING:
    from ..server import PassPilotServer

DEBOUNCE_S = 0.3  # analysis waits this long after an edit for the next one


def register(server: PassPilotServer) -> None:
    server.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    server.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    server.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)


async def did_open(ls: PassPilotServer, params: types.DidOpenTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.documents[uri] = DocumentState(uri)
    schedule(ls, uri, 0.0)


async def did_change(ls: PassPilotServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    if not is_open(ls.workspace, uri):
        return
    if uri not in ls.documents:
        ls.documents[uri] = DocumentState(uri)
    schedule(ls, uri, DEBOUNCE_S)


async def did_close(ls: PassPilotServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    state = ls.documents.pop(uri, None)
    if state is not None and state.pending is not None:
        state.pending.cancel()
    ls.measurements.forget(uri)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
