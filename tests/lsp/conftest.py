"""End-to-end fixtures: the real server (`python -m lsp_server`) over stdio, driven by pytest-lsp.

Every end-to-end test runs once per client capability profile (VS Code and Neovim as pytest-lsp ships
them): they differ in position encoding (UTF-16 vs UTF-8), inlay-hint refresh support, code action
resolve support and workspace edit shapes. All servers of a test session share one temporary result
cache, never the user's.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Union

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec
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


class Editor:
    """The client's side of open documents: applies server edits the way an editor would."""

    def __init__(self, client: LanguageClient):
        self.client = client
        self.documents: dict[str, TextDocument] = {}
        self.encoding: str = types.PositionEncodingKind.Utf16

    def codec(self) -> PositionCodec:
        return PositionCodec(encoding=self.encoding)

    def open(self, uri: str, text: str) -> None:
        self.documents[uri] = TextDocument(uri, text, version=1, position_codec=self.codec())
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="llvm", version=1, text=text)
            )
        )

    def close(self, uri: str) -> None:
        self.documents.pop(uri, None)
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )

    def text(self, uri: str) -> str:
        return self.documents[uri].source

    def version(self, uri: str) -> int:
        return self.documents[uri].version

    def replace_all(self, uri: str, text: str) -> None:
        document = self.documents[uri]
        document.apply_change(types.TextDocumentContentChangeWholeDocument(text=text))
        document.version += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=document.version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def apply_edits(self, uri: str, edits: list[types.TextEdit], version: int | None = None) -> bool:
        document = self.documents[uri]
        if version is not None and version != document.version:
            return False
        changes = []
        # Edits refer to the text before any of them: apply from the end so that earlier ranges stay valid.
        for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
            change = types.TextDocumentContentChangePartial(range=edit.range, text=edit.new_text)
            document.apply_change(change)
            changes.append(change)
        document.version += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=document.version),
                content_changes=changes,
            )
        )
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


def make_client() -> LanguageClient:
    client = LanguageClient(converter_factory=_converter)
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

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(ls: LanguageClient, params: types.ApplyWorkspaceEditParams):
        applied = ls.editor.apply_workspace_edit(params.edit)
        ls.applied_edits.append(params)
        return types.ApplyWorkspaceEditResult(applied=applied)

    @client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def refresh(ls: LanguageClient, params: Any):
        ls.hint_refreshes += 1

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
