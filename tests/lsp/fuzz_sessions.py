"""Random edit sessions against the real language server, as an editor would drive it.

A session opens a real IR module and, chosen by a seeded `random.Random`, types into it (IR fragments,
characters that some tools take for line breaks, deletions, duplicated lines, CR and CR LF line ends,
changes sent with a stale version), asks for inlay hints, hovers, code actions, definitions, references,
symbols, folding ranges and the other features the server offers at random (sometimes stale or absurd)
positions, previews and applies rewrites, and closes and reopens the document. Then it checks the server:

- it never answers with an internal error (-32603), never exits, never writes a Python traceback;
- it answers every request within a time bound, and shuts down promptly at the end;
- its copy of the document is the client's: the diagnostics of the last version are those of the
  client's text, and after every edit is undone, in order, each function's preview shows the original.

Shared by the CI-sized test (tests/lsp/test_fuzz_sessions.py) and the long run (scripts/fuzz_lsp.py).
Any failing session can be replayed from its seed.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from lsp_server.ir import ModuleLayout, check

from .conftest import ROOT, SERVER, lsp_position, make_client, options, plain, start  # noqa: F401 - make_client is re-exported

INTERNAL_ERROR = -32603
# Characters where `str.splitlines` splits and LSP does not, CR and CR LF, and other odd code points.
ODD_TEXT = ["\r", "\r\n", "\u2028", "\u2029", "\u0085", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x00", "\ufeff",
            "\U0001F600", "é", "\t"]
IR_FRAGMENTS = [
    "define", "declare", "}", "{", "(", ")", "[", "]", "<", ">", '"', ";", "/*", "*/", "!0 = !{}", "@x = global i32 0",
    "attributes #0 = { nounwind }", "%x = add i32 1, 2", "ret void", "blockaddress(@f, %bb)", "!dbg !99", "#7",
    "define i32 @z() {\n  ret i32 0\n}\n", "i32", "ptr", "label %nowhere", "\\22", 'c"', '@"', "$c = comdat any",
    "declare void @ext(\n  i32,\n  ptr)\n", "!7 = !{i32 0,\n  i32 100}\n", "@\"q\\22 é\" = global i8 0\n",
]
TRACEBACK = "Traceback (most recent call last)"


def corpus(limit_benchmark: int = 40) -> list[tuple[str, str]]:
    """Real IR to start sessions from: the examples, the test fixture, and a spread of the public
    benchmark's modules when it is built (`data/benchmark`)."""
    paths = [ROOT / "examples" / "example.ll", ROOT / "tests" / "lsp" / "fixtures" / "small.ll"]
    benchmark = sorted((ROOT / "data" / "benchmark").glob("*/*.ll"))
    if benchmark and limit_benchmark:
        step = max(1, len(benchmark) // limit_benchmark)
        paths += benchmark[::step][:limit_benchmark]
    modules = []
    for path in paths:
        text = path.read_text(errors="replace")
        if len(text) <= 400_000:  # a session edits and re-checks the module dozens of times
            modules.append((str(path.relative_to(ROOT)), text))
    return modules


@dataclass
class Tally:
    sessions: int = 0
    edits: int = 0
    requests: int = 0
    crashes: int = 0
    hangs: int = 0
    tracebacks: int = 0
    internal_errors: int = 0
    mismatches: int = 0  # the server's text is not the client's
    diagnostics_compared: int = 0  # versions whose diagnostics were compared with the client text's own
    previews_compared: int = 0  # function previews compared with the original text after the undo
    other_errors: dict[int, int] = field(default_factory=dict)  # JSON-RPC error code -> count
    slowest: float = 0.0  # the longest answer, in seconds
    failures: list[str] = field(default_factory=list)

    @property
    def defects(self) -> int:
        return self.crashes + self.hangs + self.tracebacks + self.internal_errors + self.mismatches

    def add(self, other: Tally) -> None:
        for name in ("sessions", "edits", "requests", "crashes", "hangs", "tracebacks", "internal_errors", "mismatches",
                     "diagnostics_compared", "previews_compared"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, count in other.other_errors.items():
            self.other_errors[code] = self.other_errors.get(code, 0) + count
        self.slowest = max(self.slowest, other.slowest)
        self.failures.extend(other.failures)

    def summary(self) -> str:
        errors = ", ".join(f"{code}: {count}" for code, count in sorted(self.other_errors.items())) or "none"
        return (
            f"sessions {self.sessions}, edits {self.edits}, requests {self.requests}, crashes {self.crashes}, "
            f"hangs {self.hangs}, tracebacks {self.tracebacks}, internal errors {self.internal_errors}, "
            f"text mismatches {self.mismatches} (texts compared: {self.diagnostics_compared} by diagnostics, "
            f"{self.previews_compared} by previews); other error answers: {errors}; slowest answer {self.slowest:.2f} s"
        )


class CapturingClient(LanguageClient):
    """pytest-lsp's client, keeping the server's stderr (to look for tracebacks) instead of forwarding it."""

    async def start_io(self, cmd: str, *args, **kwargs):
        await super(LanguageClient, self).start_io(cmd, *args, **kwargs)
        self.stderr_lines: list[str] = []
        self._stderr_reader = asyncio.ensure_future(self._read_stderr())

    async def _read_stderr(self) -> None:
        stream = self._server.stderr if self._server is not None else None
        if stream is None:
            return
        while line := await stream.readline():
            self.stderr_lines.append(line.decode(errors="replace"))

    async def stop(self):
        reader = getattr(self, "_stderr_reader", None)
        if reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(reader), 2)
            except asyncio.TimeoutError:
                reader.cancel()
        return await super().stop()


def _client() -> CapturingClient:
    return make_client(CapturingClient)


@dataclass(frozen=True)
class Limits:
    request_s: float = 30.0  # any request
    measured_s: float = 120.0  # requests that measure (preview, resolve): `opt` on every candidate
    exit_s: float = 10.0


class Session:
    """One edit session on one document of a running server."""

    def __init__(
        self, client: CapturingClient, capabilities: types.ServerCapabilities, rng: random.Random, name: str, text: str,
        uri: str, limits: Limits, tally: Tally,
    ):
        self.client = client
        self.rng = rng
        self.name = name
        self.original = text
        self.uri = uri
        self.limits = limits
        self.tally = tally
        self.editor = client.editor
        self.previous_text = text
        self.actions: list[Any] = []  # resolvable code actions seen, for stale resolves
        self.probes = 0
        self.capabilities = capabilities

    # Reporting

    def fail(self, kind: str, detail: str) -> None:
        self.tally.failures.append(f"{kind} in {self.name} ({self.uri}): {detail}"[:2000])

    async def request(self, what: str, call: Callable[[], Awaitable[Any]], limit: float | None = None) -> Any:
        self.tally.requests += 1
        started = time.monotonic()
        try:
            return await asyncio.wait_for(call(), limit or self.limits.request_s)
        except asyncio.TimeoutError:
            self.tally.hangs += 1
            self.fail("hang", f"{what} unanswered after {limit or self.limits.request_s:g} s")
        except JsonRpcException as error:
            code = getattr(error, "code", None) or 0
            if code == INTERNAL_ERROR:
                self.tally.internal_errors += 1
                self.fail("internal error", f"{what}: {error}")
            else:
                self.tally.other_errors[code] = self.tally.other_errors.get(code, 0) + 1
        except RuntimeError as error:  # the server process exited: pending requests fail
            if "exited" in str(error):
                raise ServerGone(str(error)) from None
            self.fail("invalid answer", f"{what}: {error!r}")
        except Exception as error:  # noqa: BLE001 - e.g. an answer that does not decode as LSP says
            self.fail("invalid answer", f"{what}: {error!r}")
        finally:
            self.tally.slowest = max(self.tally.slowest, time.monotonic() - started)
        return None

    # Edits

    def text(self) -> str:
        return self.editor.text(self.uri)

    def offset(self) -> int:
        """A random place in the text, never between the CR and LF of a line break (LSP has no position there)."""
        text = self.text()
        offset = self.rng.randint(0, len(text))
        if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
            offset -= 1
        return offset

    def line_bounds(self, offset: int) -> tuple[int, int]:
        text = self.text()
        start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
        ends = [i for i in (text.find("\n", offset), text.find("\r", offset)) if i >= 0]
        return start, min(ends) if ends else len(text)

    def edit(self) -> None:
        text = self.text()
        rng = self.rng
        kind = rng.choice(["fragment", "odd", "odd", "delete", "duplicate", "comment", "line-end", "stale", "retype"])
        at = self.offset()
        version = None
        if kind == "fragment":
            start, end, new = at, at, rng.choice(IR_FRAGMENTS)
        elif kind == "odd":
            start, end, new = at, at, "".join(rng.choice(ODD_TEXT) for _ in range(rng.randint(1, 3)))
        elif kind == "delete":
            start, end, new = at, min(len(text), at + rng.choice([1, 1, 2, 5, 40, 400])), ""
            if 0 < end < len(text) and text[end - 1] == "\r" and text[end] == "\n":
                end += 1
        elif kind == "duplicate":
            line_start, line_end = self.line_bounds(at)
            start = end = line_start
            new = text[line_start:line_end] + rng.choice(["\n", "\r\n", "\r"])
        elif kind == "comment":
            start = end = self.line_bounds(at)[0]
            new = f"; {rng.choice(ODD_TEXT)} note {rng.choice(ODD_TEXT)}\n"
        elif kind == "line-end":  # CR LF or a lone CR where there was LF, or the other way round
            breaks = [m.start() for m in re.finditer(r"\r\n|\n|\r", text)]
            if not breaks:
                return
            start = rng.choice(breaks)
            end = start + (2 if text.startswith("\r\n", start) else 1)
            new = rng.choice(["\n", "\r\n", "\r"])
        elif kind == "stale":  # a change that repeats the current version number
            start, end, new = at, at, rng.choice([" ", "\t", "x"])
            version = self.editor.version(self.uri)
        else:  # the user deletes a word and types it again
            start, end = at, min(len(text), at + rng.randint(1, 12))
            if 0 < end < len(text) and text[end - 1] == "\r" and text[end] == "\n":
                end += 1
            new = text[start:end]
        self.previous_text = text
        self.editor.type(self.uri, start, end, new, version)
        self.tally.edits += 1

    # Requests

    def position(self) -> types.Position:
        roll = self.rng.random()
        if roll < 0.1:  # absurd
            return types.Position(line=self.rng.choice([0, 10**6]), character=self.rng.choice([0, 10**6]))
        if roll < 0.25:  # computed on the text before the last edit
            text = self.previous_text
            return lsp_position(text, self.rng.randint(0, len(text)), self.editor.encoding)
        return self.editor.position(self.uri, self.offset())

    def document(self) -> types.TextDocumentIdentifier:
        return types.TextDocumentIdentifier(uri=self.uri)

    def function_names(self) -> list[str]:
        return re.findall(r"^define [^@\n]*@([-\w.$]+)\s*\(", self.text(), re.MULTILINE)

    async def ask(self) -> None:
        client, rng, document = self.client, self.rng, self.document()
        choices: list[tuple[str, Callable[[], Awaitable[Any]], float | None]] = []

        def hint_range() -> types.Range:
            first, last = sorted((self.position(), self.position()), key=lambda p: (p.line, p.character))
            return types.Range(start=first, end=last) if rng.random() < 0.7 else types.Range(
                start=types.Position(line=0, character=0), end=types.Position(line=10**6, character=0)
            )

        choices.append(("inlayHint", lambda: client.text_document_inlay_hint_async(types.InlayHintParams(text_document=document, range=hint_range())), None))
        choices.append(("hover", lambda: client.text_document_hover_async(types.HoverParams(text_document=document, position=self.position())), None))
        choices.append(("definition", lambda: client.text_document_definition_async(types.DefinitionParams(text_document=document, position=self.position())), None))
        choices.append(("references", lambda: client.text_document_references_async(types.ReferenceParams(
            text_document=document, position=self.position(), context=types.ReferenceContext(include_declaration=rng.random() < 0.5))), None))
        choices.append(("documentSymbol", lambda: client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=document)), None))
        choices.append(("foldingRange", lambda: client.text_document_folding_range_async(types.FoldingRangeParams(text_document=document)), None))
        choices.append(("codeAction", self.code_actions, None))
        choices.append(("previewFunction", self.preview, self.limits.measured_s))
        if self.actions:
            choices.append(("codeAction/resolve", self.resolve, self.limits.measured_s))
        capabilities = self.capabilities
        if capabilities.semantic_tokens_provider is not None:
            choices.append(("semanticTokens", lambda: client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(text_document=document)), None))
        if capabilities.code_lens_provider is not None:
            choices.append(("codeLens", lambda: client.text_document_code_lens_async(types.CodeLensParams(text_document=document)), None))
        if capabilities.document_highlight_provider:
            choices.append(("documentHighlight", lambda: client.text_document_document_highlight_async(
                types.DocumentHighlightParams(text_document=document, position=self.position())), None))
        if capabilities.rename_provider:
            choices.append(("prepareRename", lambda: client.text_document_prepare_rename_async(
                types.PrepareRenameParams(text_document=document, position=self.position())), None))
        what, call, limit = rng.choice(choices)
        await self.request(what, call, limit)

    async def code_actions(self) -> Any:
        position = self.position()
        actions = await self.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=self.document(),
                range=types.Range(start=position, end=position),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
        for action in actions or []:
            if isinstance(action, types.CodeAction) and action.data is not None:
                self.actions.append(action)
        del self.actions[:-6]
        return actions

    async def resolve(self) -> Any:
        """Resolve a code action, perhaps one listed before the latest edits; apply its edit if the
        version it names is still the client's."""
        action = self.rng.choice(self.actions)
        resolved = await self.client.code_action_resolve_async(action)
        if resolved is not None and resolved.edit is not None and self.rng.random() < 0.5:
            self.editor.apply_workspace_edit(resolved.edit)  # refused by the editor when the version is stale
        return resolved

    async def preview(self, name: str | None = None) -> Any:
        names = self.function_names()
        argument: dict[str, Any] = {"uri": self.uri}
        if name is not None:
            argument["function"] = name
        elif names and self.rng.random() < 0.7:
            argument["function"] = self.rng.choice(names)
        else:
            position = self.position()
            argument["position"] = {"line": position.line, "character": position.character}
        result = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="passpilot.previewFunction", arguments=[argument])
        )
        return plain(result)

    # Checks

    async def diagnostics_of_version(self, version: int) -> list[types.Diagnostic] | None:
        deadline = time.monotonic() + self.limits.request_s
        while time.monotonic() < deadline:
            for params in reversed(self.client.published):
                if params.uri == self.uri and params.version == version:
                    return list(params.diagnostics)
            await asyncio.sleep(0.05)
        self.tally.hangs += 1
        self.fail("hang", f"no diagnostics for version {version} after {self.limits.request_s:g} s")
        return None

    async def check_diagnostics(self) -> None:
        """The last version's diagnostics are those of the client's text: same messages, same places.
        A comment no earlier text had makes sure the server analyses (and publishes for) this version."""
        self.probes += 1
        self.editor.type(self.uri, len(self.text()), len(self.text()), f"\n; probe {self.probes}\n")
        self.tally.edits += 1
        version = self.editor.version(self.uri)
        published = await self.diagnostics_of_version(version)
        if published is None:
            return
        text = self.text()
        lines = text.split("\n")
        starts = [0]
        for line in lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        expected = []
        for error in check(text):
            line = min(max(error.line, 0), len(lines) - 1)
            offset = starts[line] + min(error.column, len(lines[line]))
            expected.append((lsp_position(text, offset, self.editor.encoding), error.message))
        got = [(d.range.start, d.message) for d in published]
        self.tally.diagnostics_compared += 1
        if got != expected:
            self.tally.mismatches += 1
            self.fail("text mismatch", f"version {version}: diagnostics {got[:3]} for a text whose own are {expected[:3]}")

    async def check_undone(self) -> None:
        """Undo every edit, in order, and compare each function's preview with the original text."""
        history = self.editor.history[self.uri]
        while history:
            start, inserted, removed = history.pop()
            self.editor.type(self.uri, start, start + inserted, removed)
            history.pop()  # `type` recorded the undo itself
            self.tally.edits += 1
        if self.text() != self.original:
            self.fail("harness", "undoing the edits did not restore the text")  # a bug of this fuzzer
            return
        diagnostics = await self.diagnostics_of_version(self.editor.version(self.uri))
        if diagnostics is None:
            return
        expected_errors = check(self.original)
        self.tally.diagnostics_compared += 1
        if len(diagnostics) != len(expected_errors):
            self.tally.mismatches += 1
            self.fail("text mismatch", f"after undoing every edit: diagnostics {[d.message for d in diagnostics][:3]}")
            return
        if expected_errors:
            return
        layout = ModuleLayout.from_text(self.original)
        for span in self.rng.sample(list(layout.functions), min(2, len(layout.functions))):
            result = await self.request("previewFunction", lambda: self.preview(span.name), self.limits.measured_s)
            if not isinstance(result, dict) or "original_text" not in result:
                continue  # refused with a reason (e.g. nothing better than the original): nothing to compare
            first = layout.position_offset(span.attrs_comment_line, 0) if span.attrs_comment_line is not None else span.start
            expected = self.original[first : span.end]
            self.tally.previews_compared += 1
            if result["original_text"] != expected:
                self.tally.mismatches += 1
                self.fail("text mismatch", f"preview of @{span.name} after undoing every edit shows other text")

    async def run(self, steps: int) -> None:
        self.editor.open(self.uri, self.original)
        pending: list[asyncio.Task] = []
        for step in range(steps):
            roll = self.rng.random()
            if roll < 0.5:
                self.edit()
            elif roll < 0.95:
                pending.append(asyncio.ensure_future(self.ask()))
                if len(pending) >= 3 or self.rng.random() < 0.5:  # sometimes answers overlap the next edits
                    await asyncio.gather(*pending)
                    pending.clear()
            elif roll < 0.97:
                await self.check_diagnostics()
            else:  # closed and opened again, as after a rename on disk
                await asyncio.gather(*pending)
                pending.clear()
                text, version, history = self.text(), self.editor.version(self.uri), self.editor.history[self.uri]
                self.editor.close(self.uri)
                self.editor.open(self.uri, text, version + 1)
                self.editor.history[self.uri] = history
            if self.client._server.returncode is not None:  # noqa: SLF001
                raise ServerGone(f"exit status {self.client._server.returncode}")  # noqa: SLF001
        await asyncio.gather(*pending)
        await self.check_diagnostics()
        await self.check_undone()
        self.editor.close(self.uri)


class ServerGone(Exception):
    pass


async def run_server(
    seeds: list[int], modules: list[tuple[str, str]], *, steps: int, cache_dir: Path, limits: Limits = Limits(),
    profile: str = "visual-studio-code", budget: int = 1, model: str = "none",
) -> Tally:
    """Sessions one after another on one server (a fresh one per call); every session's own seed picks
    its module and its actions."""
    tally = Tally()
    client = _client()
    await client.start_io(*SERVER.server_command)
    crashed = False
    try:
        initialized = await asyncio.wait_for(start(client, profile, options(cache_dir, budget=budget, model={"path": model})), 60)
        for seed in seeds:
            rng = random.Random(seed)
            name, text = modules[rng.randrange(len(modules))]
            uri = f"file:///fuzz/{seed}/{Path(name).name}"
            session = Session(client, initialized.capabilities, rng, f"{name} (seed {seed})", text, uri, limits, tally)
            tally.sessions += 1
            try:
                await session.run(steps)
            except ServerGone as error:
                tally.crashes += 1 if "exit status" in str(error) else 0
                session.fail("crash", str(error))
                crashed = True
                break
        if not crashed:
            started = time.monotonic()
            try:
                await asyncio.wait_for(client.shutdown_session(), limits.exit_s)
            except (asyncio.TimeoutError, JsonRpcException) as error:
                tally.hangs += 1
                tally.failures.append(f"shutdown: no prompt exit ({error!r}) after {time.monotonic() - started:.1f} s")
    finally:
        server = client._server  # noqa: SLF001
        if server is not None and server.returncode is None:
            server.kill()
        await client.stop()
    tracebacks = [i for i, line in enumerate(client.stderr_lines) if TRACEBACK in line]
    tally.tracebacks += len(tracebacks)
    for index in tracebacks[:5]:
        tally.failures.append("traceback on stderr:\n" + "".join(client.stderr_lines[max(index - 2, 0) : index + 30]))
    return tally
