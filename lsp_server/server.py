"""The PassPilot language server: state, and the wiring of LSP methods to `features/`.

Every handler lives in a feature module and takes the server as `ls`. The server object holds all state
(typed settings, the assembled engine, open documents, measured results); there are no module-level
mutable globals. The engine is synchronous, so it runs in executor threads and never blocks the loop
that reads messages.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer

from . import __version__
from .config import Settings
from .features import (
    code_actions,
    commands,
    documents,
    folding,
    hover,
    inlay_hints,
    navigation,
    settings,
    symbols,
)
from .features.documents import DocumentState
from .features.engine import EngineState
from .features.jobs import JobTracker
from .features.measure import Measurements

log = logging.getLogger(__name__)
T = TypeVar("T")

FEATURES = (settings, documents, inlay_hints, hover, code_actions, commands, navigation, symbols, folding)


class PassPilotServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            name="passpilot",
            version=__version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.settings = Settings()
        self.raw_initialization_options: Any = None
        self.settings_lock = asyncio.Lock()
        self.reported_problems: set[str] = set()
        self.reported_engine_error: str | None = None
        self.initialized = False
        self.engine = EngineState()
        self.documents: dict[str, DocumentState] = {}
        self.measurements = Measurements(self)
        self.jobs = JobTracker(self)
        # Parsing, extraction and the engine's driver threads; `opt` processes run in the optimizer's own pool.
        self.executor = ThreadPoolExecutor(max_workers=max(4, (os.cpu_count() or 1) + 2), thread_name_prefix="passpilot-lsp")

    # Helpers the features share.

    def supports(self, capability: str) -> bool:
        """Whether the client declared a capability, e.g. `workspace.inlay_hint.refresh_support`."""
        try:
            return bool(get_capability(self.client_capabilities, capability, False))
        except (AttributeError, RuntimeError):
            return False

    async def run_sync(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(function, *args, **kwargs))

    def notify_status(self, message: str | None = None) -> None:
        from .features.status import send_status

        send_status(self, message)

    def show_message(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.WARNING, "%s", message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))


def build_server() -> PassPilotServer:
    server = PassPilotServer()
    for feature in FEATURES:
        feature.register(server)
    return server


def _protocol_streams():
    """stdin/stdout for the protocol, with file descriptor 1 redirected to stderr so that nothing else
    (a native library's print, a stray `print`) can corrupt the message stream."""
    stdin = sys.stdin.buffer
    try:
        stdout = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptors (embedded, tests)
        return stdin, sys.stdout.buffer
    sys.stdout = sys.stderr
    return stdin, stdout


def serve(tcp: str | None = None) -> int:
    """Run the server over stdio, or on `HOST:PORT`; returns the exit status."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=os.environ.get("PASSPILOT_LOG_LEVEL", "WARNING").upper(),
            format="passpilot: %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    server = build_server()
    try:
        if tcp:
            host, _, port = tcp.rpartition(":")
            if not port.isdigit():
                print(f"passpilot: --tcp expects HOST:PORT, got {tcp!r}", file=sys.stderr)
                return 2
            server.start_tcp(host or "127.0.0.1", int(port))
        else:
            stdin, stdout = _protocol_streams()
            server.start_io(stdin, stdout)
    finally:
        server.jobs.cancel_all()
        server.measurements.close()
        server.engine.close()
        server.executor.shutdown(wait=False, cancel_futures=True)
    return 0
