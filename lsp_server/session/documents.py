"""The document store: open documents, their analysis (parse + verify + function index) and diagnostics.

Analysis runs on open and, debounced, after edits, in an executor thread. A document that does not parse
keeps the function index of its last good text, so hints and hovers do not vanish while typing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from ..ir import FunctionSpan, IRError, ModuleLayout, StandaloneFunction, check, standalone_function
from ..ir.irtext import NameIndex, Token, build_index
from .measure import VISIBLE
from .positions import Positions, client_lines_with_breaks, client_offset, encoding_name

if TYPE_CHECKING:
    from ..server import PassPilotServer

log = logging.getLogger(__name__)

SYNC_KIND = types.TextDocumentSyncKind.Incremental
EXTRACT_FIRST = 4  # functions cut out ahead of the others, for the hints a client shows


class ClientTextDocument(TextDocument):
    """pygls' document, with the client's lines: pygls splits lines with `str.splitlines`, which also
    splits at U+2028, U+0085, form feeds and the like, and then applies the client's edits lines off."""

    @property
    def lines(self) -> tuple[str, ...]:
        return client_lines_with_breaks(self.source)

    def apply_change(self, change: types.TextDocumentContentChangeEvent) -> None:
        if not isinstance(change, types.TextDocumentContentChangePartial):
            super().apply_change(change)
            return
        source = self.source
        encoding = encoding_name(self.position_codec.encoding)
        start = client_offset(source, change.range.start, encoding)
        end = client_offset(source, change.range.end, encoding)
        if end < start:  # a reversed range: the text between its ends is what it covers
            start, end = end, start
        self._source = source[:start] + change.text + source[end:]

    def offset_at_position(self, client_position: types.Position) -> int:
        return client_offset(self.source, client_position, encoding_name(self.position_codec.encoding))


class ClientWorkspace(Workspace):
    """pygls' workspace, with `ClientTextDocument`s; changes to a document that is not open are ignored
    (pygls would raise in its own handler)."""

    def _create_text_document(
        self, doc_uri: str, source: str | None = None, version: int | None = None, language_id: str | None = None
    ) -> TextDocument:
        return ClientTextDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=self._sync_kind,
            position_codec=self.position_codec,
        )

    def update_text_document(self, text_doc: types.VersionedTextDocumentIdentifier, change) -> None:
        if not is_open(self, text_doc.uri):
            log.warning("ignoring a change to %s, which is not open", text_doc.uri)
            return
        super().update_text_document(text_doc, change)


def use_client_lines(ls: PassPilotServer, params: types.InitializeParams) -> None:
    """Replace the workspace pygls just created for `initialize` (no document is open yet) by a
    `ClientWorkspace` with the same root, folders, sync kind and position encoding."""
    workspace = ls.workspace
    ls.protocol._workspace = ClientWorkspace(  # noqa: SLF001 - pygls has no other way to choose the document class
        workspace.root_uri,
        SYNC_KIND,
        params.workspace_folders or [],
        workspace.position_encoding,
    )


def is_open(workspace: Workspace, uri: str) -> bool:
    """Whether the client opened the document (pygls would otherwise read the file from disk)."""
    return unquote(uri) in workspace.text_documents


@dataclass(frozen=True)
class Analysis:
    text: str
    version: int | None
    layout: ModuleLayout
    errors: tuple[IRError, ...]
    functions: dict[str, StandaloneFunction] | None  # by display name; None when the text is invalid

    @property
    def valid(self) -> bool:
        return self.functions is not None


def check_text(text: str) -> tuple[ModuleLayout, tuple[IRError, ...]]:
    """Blocking: parse and verify with llvmlite, and index the text (the index survives broken text)."""
    return ModuleLayout.from_text(text), tuple(check(text))


Extracted = dict[tuple[str, str], StandaloneFunction]  # (module context, function text) -> extraction


def module_context(layout: ModuleLayout) -> str:
    """A digest of everything a function's extraction depends on besides its own text: every line that
    is not inside a function body (declarations, globals, attributes, metadata, other headers)."""
    digest = hashlib.sha1()
    line = 0
    for span in layout.functions:
        for text in layout.lines[line : span.header_end_line + 1]:
            digest.update(text.encode())
            digest.update(b"\n")
        line = span.end_line
    for text in layout.lines[line:]:
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def extract(
    layout: ModuleLayout, previous: Extracted, spans: list[FunctionSpan] | None = None
) -> tuple[dict[str, StandaloneFunction], Extracted]:
    """Blocking: functions (all, or `spans`) as standalone modules, reusing extractions of unchanged ones."""
    context = module_context(layout)
    functions: dict[str, StandaloneFunction] = {}
    extracted: Extracted = {}
    for span in layout.functions if spans is None else spans:
        key = (context, layout.function_text(span))
        function = previous.get(key)
        if function is None:
            try:
                function = standalone_function(layout, span)
            except Exception:  # noqa: BLE001 - one odd function must not hide the others
                log.warning("could not extract @%s", span.name, exc_info=True)
                continue
        functions[span.name] = function
        extracted[key] = function
    return functions, extracted


@dataclass
class DocumentState:
    uri: str
    latest: Analysis | None = None  # of the newest text analysed
    good: Analysis | None = None  # the newest valid text
    pending: asyncio.Task | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    extracted: Extracted = field(default_factory=dict)  # of the last good text
    shown: tuple[int, int] | None = None  # lines of the last inlay-hint request
    _layout: tuple[str, ModuleLayout] | None = None
    _names: tuple[str, NameIndex] | None = None

    def shown_spans(self, layout: ModuleLayout) -> list[FunctionSpan]:
        """Functions in the range of the client's last inlay-hint request (else the first few), when the
        module is large enough for that to matter."""
        if len(layout.functions) <= EXTRACT_FIRST:
            return []
        if self.shown is None:
            return list(layout.functions[:EXTRACT_FIRST])
        first, last = self.shown
        return [s for s in layout.functions if first <= s.header_end_line <= last][: 4 * EXTRACT_FIRST]

    def layout_of(self, text: str) -> ModuleLayout:
        """The layout of `text` (usually the current text), cached; it survives broken text."""
        if self.latest is not None and self.latest.text == text:
            return self.latest.layout
        if self._layout is None or self._layout[0] != text:
            self._layout = (text, ModuleLayout.from_text(text))
        return self._layout[1]

    async def names_of(self, ls: PassPilotServer, text: str) -> NameIndex:
        """Where each name of `text` is defined and used; built in the executor (large modules), cached."""
        if self._names is None or self._names[0] != text:
            names = await ls.run_sync(build_index, self.layout_of(text))
            self._names = (text, names)
        return self._names[1]

    def standalone(self, span: FunctionSpan) -> StandaloneFunction | None:
        """The last good extraction of the function with this span's name."""
        if self.good is None or self.good.functions is None:
            return None
        return self.good.functions.get(span.name)


def schedule(ls: PassPilotServer, uri: str, delay: float) -> None:
    state = ls.documents[uri]
    if state.pending is not None and not state.pending.done():
        state.pending.cancel()

    async def later() -> None:
        if delay:
            await asyncio.sleep(delay)
        try:
            await analyse_document(ls, uri)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep serving; the next edit tries again
            log.exception("analysing %s failed", uri)

    state.pending = asyncio.ensure_future(later())


def current_text(ls: PassPilotServer, uri: str) -> tuple[str, int | None]:
    document = ls.workspace.get_text_document(uri)
    return document.source, document.version


def open_layout(ls: PassPilotServer, uri: str) -> tuple[DocumentState, str, ModuleLayout] | None:
    """An open document's state, current text and the layout of that text; None if it is not open."""
    state = ls.documents.get(uri)
    if state is None:
        return None
    text, _ = current_text(ls, uri)
    return state, text, state.layout_of(text)


@dataclass(frozen=True)
class NameAt:
    """The name under a client position in an open document's current text, with what locates it."""

    state: DocumentState
    text: str
    layout: ModuleLayout
    names: NameIndex
    token: Token
    positions: Positions


async def name_at(ls: PassPilotServer, uri: str, position: types.Position) -> NameAt | None:
    """What hover, navigation, highlights and rename start from; None off a name or past the text."""
    opened = open_layout(ls, uri)
    if opened is None:
        return None
    state, text, layout = opened
    positions = Positions.of(ls, text, layout.lines)
    if not 0 <= position.line < positions.client_line_count:
        return None
    line, column = positions.to_ir(position)
    names = await state.names_of(ls, text)
    token = names.at(line, column)
    return NameAt(state, text, layout, names, token, positions) if token is not None else None


async def analyse_document(ls: PassPilotServer, uri: str) -> DocumentState | None:
    """Analyse the document's current text (unless already done), publish diagnostics, index functions."""
    state = ls.documents.get(uri)
    if state is None:
        return None
    async with state.lock:
        text, version = current_text(ls, uri)
        if state.latest is not None and state.latest.text == text:
            return state
        layout, errors = await ls.run_sync(check_text, text)
        if ls.documents.get(uri) is not state:
            return None  # closed meanwhile
        # Diagnostics first; cutting out the functions of a large module takes longer.
        publish_diagnostics(ls, uri, text, layout, errors, version)
        functions = None
        if not errors:
            previous = state.extracted
            first = state.shown_spans(layout)
            if first:
                # The functions the client shows first, so that their hints do not wait for the whole module.
                shown, extracted = await ls.run_sync(extract, layout, previous, first)
                if ls.documents.get(uri) is not state:
                    return None
                previous = {**previous, **extracted}
                state.good = Analysis(text, version, layout, errors, shown)
                ls.measurements.enqueue(list(shown.values()), VISIBLE, uri, force=True)
                ls.measurements.refresh_hints()
            functions, extracted = await ls.run_sync(extract, layout, previous)
            if ls.documents.get(uri) is not state:
                return None
            state.extracted = extracted
        analysis = Analysis(text, version, layout, errors, functions)
        state.latest = analysis
        if analysis.valid:
            state.good = analysis
            ls.measurements.document_changed(uri, [functions[s.name] for s in layout.functions if s.name in functions])
        ls.measurements.refresh_hints()
    return state


async def up_to_date(ls: PassPilotServer, uri: str) -> DocumentState | None:
    """The state of an open document with its current text analysed (skipping any pending debounce);
    None when the client has not opened it."""
    if not is_open(ls.workspace, uri):
        return None
    state = ls.documents.get(uri)
    if state is None:
        ls.documents[uri] = state = DocumentState(uri)
    text, _ = current_text(ls, uri)
    if state.latest is None or state.latest.text != text:
        if state.pending is not None and not state.pending.done():
            state.pending.cancel()
        return await analyse_document(ls, uri)
    return state


def publish_diagnostics(
    ls: PassPilotServer, uri: str, text: str, layout: ModuleLayout, errors: tuple[IRError, ...], version: int | None
) -> None:
    lines = layout.lines
    positions = Positions.of(ls, text, lines)
    diagnostics = []
    for error in errors:
        line = min(max(error.line, 0), max(len(lines) - 1, 0))
        line_text = lines[line] if lines else ""
        end = error.end_column if error.end_column is not None and error.end_column > error.column else error.column + 1
        end = min(end, max(len(line_text), error.column))
        diagnostics.append(
            types.Diagnostic(
                range=positions.range(line, error.column, end),
                message=error.message,
                severity=types.DiagnosticSeverity.Error,
                source="passpilot",
            )
        )
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version))
