"""End-to-end fixtures: the real server (`python -m lsp_server`) over stdio, driven by pytest-lsp.

Every end-to-end test runs once per client capability profile (VS Code and Neovim as pytest-lsp ships
them): they differ in position encoding (UTF-16 vs UTF-8), inlay-hint refresh support, code action
resolve support and workspace edit shapes. All servers of a test session share one temporary result
cache, never the user's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Union

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE = ROOT / "examples" / "example.ll"
SMALL = FIXTURES / "small.ll"
OPT = shutil.which("opt-22") or shutil.which("opt")
PROFILES = ["visual-studio-code", "neovim"]
STATUS = "passpilot/status"

if OPT is None:
    pytest.skip("LLVM's opt is not installed", allow_module_level=True)


def delayed_opt(path: Path, argument: str, action: str) -> str:
    """The real `opt` behind a shell wrapper at `path` that first runs `action` (e.g. `sleep 30`) when it is
    called with `argument` among its arguments (`-S`: a measurement; `-passes=verify`; `-print-changed`)."""
    path.write_text(f'#!/bin/sh\ncase " $* " in *" {argument} "*) {action};; esac\nexec {OPT} "$@"\n')
    path.chmod(0o755)
    return str(path)


LSP_LINE_BREAK = re.compile(r"\r\n|\r|\n")
CODECS = {"utf-8": ("utf-8", 1), "utf-16": ("utf-16-le", 2), "utf-32": ("utf-32-le", 4)}


def lsp_line_span(text: str, line: int) -> tuple[int, int]:
    """Where line `line` of `text` starts and where its content ends, as LSP counts lines: they end at
    "\n", "\r\n" or "\r" only (not where `str.splitlines` also splits). Past the last line: the end."""
    start = 0
    for _ in range(line):
        found = LSP_LINE_BREAK.search(text, start)
        if found is None:
            return len(text), len(text)
        start = found.end()
    found = LSP_LINE_BREAK.search(text, start)
    return start, found.start() if found else len(text)


def lsp_offset(text: str, position: types.Position, encoding: str) -> int:
    """The client's reading of a position: its character offset in `text` (written independently of the
    server's conversion, from the encodings' codecs)."""
    start, end = lsp_line_span(text, position.line)
    codec, width = CODECS[getattr(encoding, "value", encoding)]
    encoded = text[start:end].encode(codec, "surrogatepass")
    return start + len(encoded[: position.character * width].decode(codec, "ignore"))


def lsp_position(text: str, offset: int, encoding: str) -> types.Position:
    """The position of a character offset (at a character boundary, outside any "\r\n")."""
    line = len(LSP_LINE_BREAK.findall(text[:offset]))
    start, _ = lsp_line_span(text, line)
    codec, width = CODECS[getattr(encoding, "value", encoding)]
    return types.Position(line=line, character=len(text[start:offset].encode(codec, "surrogatepass")) // width)


def apply_text_edits(
    text: str, edits: list[types.TextEdit], encoding: str, history: list[tuple[int, int, str]] | None = None
) -> tuple[str, list[types.TextDocumentContentChangePartial]]:
    """Apply edits that all refer to `text` (as LSP's TextEdit[] do; inserts at one place keep their
    order); returns the new text and the incremental changes that take a copy of `text` there."""
    spans = [(lsp_offset(text, e.range.start, encoding), lsp_offset(text, e.range.end, encoding), i, e) for i, e in enumerate(edits)]
    changes = []
    # From the end, so that each change's range is still right when it is applied.
    for start, end, _, edit in sorted(spans, key=lambda s: (s[0], s[2]), reverse=True):
        if history is not None:
            history.append((start, len(edit.new_text), text[start:end]))
        text = text[:start] + edit.new_text + text[end:]
        changes.append(types.TextDocumentContentChangePartial(range=edit.range, text=edit.new_text))
    return text, changes


class Editor:
    """The client's side of open documents: applies edits the way an editor does, with LSP's lines."""

    def __init__(self, client: LanguageClient):
        self.client = client
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.history: dict[str, list[tuple[int, int, str]]] = {}  # (start, inserted length, removed text)
        self.encoding: str = types.PositionEncodingKind.Utf16

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.texts[uri], self.versions[uri] = text, version
        self.history.setdefault(uri, [])
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="llvm", version=version, text=text)
            )
        )

    def close(self, uri: str) -> None:
        self.texts.pop(uri, None)
        self.versions.pop(uri, None)
        self.history.pop(uri, None)
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )

    def text(self, uri: str) -> str:
        return self.texts[uri]

    def version(self, uri: str) -> int:
        return self.versions[uri]

    def position(self, uri: str, offset: int) -> types.Position:
        return lsp_position(self.texts[uri], offset, self.encoding)

    def offset(self, uri: str, position: types.Position) -> int:
        return lsp_offset(self.texts[uri], position, self.encoding)

    def _notify(self, uri: str, changes: list, version: int | None = None) -> None:
        self.versions[uri] = self.versions[uri] + 1 if version is None else version
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=changes,
            )
        )

    def replace_all(self, uri: str, text: str) -> None:
        self.history.setdefault(uri, []).append((0, len(text), self.texts[uri]))
        self.texts[uri] = text
        self._notify(uri, [types.TextDocumentContentChangeWholeDocument(text=text)])

    def type(self, uri: str, start: int, end: int, text: str, version: int | None = None) -> None:
        """The user replaces characters `start:end` (one incremental change; `version`: send this one
        instead of the next, e.g. a stale one)."""
        old = self.texts[uri]
        # LSP has no position between the CR and the LF of a line break: take in the whole break.
        if 0 < start < len(old) and old[start - 1 : start + 1] == "\r\n":
            start, text = start - 1, "\r" + text
        if 0 < end < len(old) and old[end - 1 : end + 1] == "\r\n":
            end, text = end + 1, text + "\n"
        change = types.TextDocumentContentChangePartial(
            range=types.Range(start=self.position(uri, start), end=self.position(uri, end)), text=text
        )
        self.history.setdefault(uri, []).append((start, len(text), old[start:end]))
        self.texts[uri] = old[:start] + text + old[end:]
        self._notify(uri, [change], version)

    def apply_edits(self, uri: str, edits: list[types.TextEdit], version: int | None = None) -> bool:
        if uri not in self.texts or (version is not None and version != self.versions[uri]):
            return False
        text = self.texts[uri]
        self.texts[uri], changes = apply_text_edits(text, edits, self.encoding, self.history.setdefault(uri, []))
        self._notify(uri, changes)
        return True

    def apply_workspace_edit(self, edit: types.WorkspaceEdit) -> bool:
        applied = True
        for change in edit.document_changes or []:
            assert isinstance(change, types.TextDocumentEdit), change
            applied &= self.apply_edits(change.text_document.uri, list(change.edits), change.text_document.version)
        for uri, edits in (edit.changes or {}).items():
            applied &= self.apply_edits(uri, list(edits))
        return applied


def plain(value: Any) -> Any:
    """pygls hands unknown notifications over as namedtuples; tests want JSON-like values."""
    if hasattr(value, "_asdict"):
        return {key: plain(item) for key, item in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def _converter():
    """pygls' converter, except that a CodeAction carrying a `command` object stays a CodeAction.

    (lsprotocol decodes any `Command | CodeAction` with a `command` key as a Command.)
    """
    converter = default_converter()

    def command_or_action(obj: Any, _: type):
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], command_or_action)
    return converter


def make_client(client_class: type[LanguageClient] = LanguageClient) -> LanguageClient:
    client = client_class(converter_factory=_converter)
    defaults = {k: f for k, f in DEFAULT_CLIENT_FEATURES.items() if k != types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS}
    register_lsp_features(client, defaults)
    client.editor = Editor(client)
    client.published = []
    client.statuses = []
    client.applied_edits = []
    client.hint_refreshes = 0

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def publish(ls: LanguageClient, params: types.PublishDiagnosticsParams):
        ls.diagnostics[params.uri] = params.diagnostics
        ls.published.append(params)

    client.refuse_edits = None  # a reason: the user (or the editor) declines every edit

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(ls: LanguageClient, params: types.ApplyWorkspaceEditParams):
        if ls.refuse_edits is not None:
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason=ls.refuse_edits)
        applied = ls.editor.apply_workspace_edit(params.edit)
        ls.applied_edits.append(params)
        return types.ApplyWorkspaceEditResult(applied=applied)

    @client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def refresh(ls: LanguageClient, params: Any):
        ls.hint_refreshes += 1

    client.lens_refreshes = 0

    @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def refresh_lenses(ls: LanguageClient, params: Any):
        ls.lens_refreshes += 1

    @client.feature(STATUS)
    def status(ls: LanguageClient, params: Any):
        ls.statuses.append(plain(params))

    return client


SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server"], client_factory=make_client)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("passpilot-cache")


def options(cache_dir: Path, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"opt": {"path": OPT}, "model": {"path": "none"}, "budget": 2, "cache": {"dir": str(cache_dir)}}
    for key, value in overrides.items():
        settings[key] = value
    return settings


async def start(client: LanguageClient, profile: str, initialization_options: Any) -> types.InitializeResult:
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(profile),
            initialization_options=initialization_options,
            root_uri=ROOT.as_uri(),
        )
    )
    client.editor.encoding = result.capabilities.position_encoding or types.PositionEncodingKind.Utf16
    client.profile = profile
    await wait_until(
        lambda: any(s["opt"] is not None or (not s["busy"] and s["message"]) for s in client.statuses),
        what="the engine to start",
    )
    return result


@pytest_lsp.fixture(config=SERVER, params=PROFILES, scope="module")
async def client(lsp_client: LanguageClient, request, cache_dir):
    """A server shared by the tests of a module (each test opens its own documents)."""
    await start(lsp_client, request.param, options(cache_dir))
    yield
    await lsp_client.shutdown_session()


async def wait_until(predicate, *, timeout: float = 60.0, what: str = "a condition", interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


async def diagnostics_for(client: LanguageClient, uri: str, version: int | None = None, timeout: float = 30.0):
    """The diagnostics published for `uri` (for `version` of the document, when given)."""

    def latest():
        for params in reversed(client.published):
            if params.uri == uri and (version is None or params.version == version):
                return params
        return None

    params = await wait_until(latest, timeout=timeout, what=f"diagnostics of {uri} (version {version})")
    return list(params.diagnostics)


def whole_range(text: str) -> types.Range:
    lines = text.split("\n")
    return types.Range(start=types.Position(line=0, character=0), end=types.Position(line=len(lines), character=0))


async def inlay_hints(client: LanguageClient, uri: str, text: str) -> list[types.InlayHint]:
    return await client.text_document_inlay_hint_async(
        types.InlayHintParams(text_document=types.TextDocumentIdentifier(uri=uri), range=whole_range(text))
    ) or []


async def wait_for_hints(client: LanguageClient, uri: str, count: int, timeout: float = 60.0) -> list[types.InlayHint]:
    """Ask for hints until `count` of them are there (clients re-ask on refresh; this one polls)."""
    deadline = time.monotonic() + timeout
    while True:
        hints = await inlay_hints(client, uri, client.editor.text(uri))
        if len(hints) >= count:
            return hints
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(hints)} of {count} hints after {timeout:g} s: {hints}")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def session(profile: str, initialization_options: Any, configuration: dict[str, Any] | None = None):
    """A server of its own, for tests that change settings or need a special `opt`."""
    client = await SERVER.start()
    if configuration is not None:
        client.set_configuration(configuration, section="passpilot")
    try:
        await start(client, profile, initialization_options)
        yield client
    finally:
        try:
            await asyncio.wait_for(client.shutdown_session(), 30)
        finally:
            await client.stop()


async def code_action(client: LanguageClient, uri: str, line: int, title: str) -> types.CodeAction | types.Command:
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=line, character=2), end=types.Position(line=line, character=2)),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert actions, f"no code actions on line {line}"
    matching = [a for a in actions if a.title == title]
    assert len(matching) == 1, [a.title for a in actions]
    return matching[0]


async def run_code_action(client: LanguageClient, uri: str, line: int, title: str) -> None:
    """Pick a code action the way an editor does: resolve its edit if needed, apply it, or run its command."""
    action = await code_action(client, uri, line, title)
    if isinstance(action, types.Command):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=action.command, arguments=action.arguments)
        )
        return
    if action.edit is None and action.command is None:
        action = await client.code_action_resolve_async(action)
    if action.edit is not None:
        assert client.editor.apply_workspace_edit(action.edit)
    if action.command is not None:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=action.command.command, arguments=action.command.arguments)
        )
