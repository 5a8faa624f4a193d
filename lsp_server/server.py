"""The PassPilot language server: state, and the wiring of LSP methods to `features/`.

Every handler lives in a feature module and takes the server as `ls`; the services they share live in
`session/`. The server object holds all state
(typed settings, the assembled engine, open documents, measured results); there are no module-level
mutable globals. The engine is synchronous, so it runs in executor threads and never blocks the loop
that reads messages.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcException, JsonRpcInternalError
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

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
from .features import codelens, deep_search, pass_trace, rename, semantic_tokens
from .session.documents import SYNC_KIND, DocumentState
from .session.engine import EngineState
from .session.jobs import JobTracker
from .session.measure import Measurements
from .session.positions import Positions

log = logging.getLogger(__name__)
T = TypeVar("T")

FEATURES = (
    settings,
    documents,
    inlay_hints,
    hover,
    code_actions,
    commands,
    deep_search,
    navigation,
    symbols,
    folding,
    pass_trace,
    codelens,
    semantic_tokens,
    rename,
)


class PassPilotProtocol(LanguageServerProtocol):
    """pygls' protocol, except that
    - the client's answer to a request the server stopped waiting for (its future was cancelled: a job
      ended, a command was cancelled) is dropped; pygls would fail on it and log a traceback;
    - the `workDoneToken` of a request is kept for the handler (`work_done_token`): pygls passes a
      command handler its arguments only, and a client that shows its own progress for a command
      (VS Code's notification with a Cancel button) gives that token to report on."""

    _work_done_token: contextvars.ContextVar[Any] = contextvars.ContextVar("passpilot_work_done_token", default=None)

    @property
    def work_done_token(self) -> str | int | None:
        """The client's progress token of the request being handled (a context variable, as pygls's
        `msg_id`: each handler's task sees its own request's)."""
        return self._work_done_token.get()

    def _handle_request(self, msg_id, method_name, params):
        self._work_done_token.set(getattr(params, "work_done_token", None))
        super()._handle_request(msg_id, method_name, params)

    def _handle_response(self, msg_id, result=None, error=None):
        future = self._request_futures.get(msg_id)
        if future is not None and future.cancelled():
            del self._request_futures[msg_id]
            log.debug("dropped the answer to %s, which is no longer awaited", msg_id)
            return
        super()._handle_response(msg_id, result, error)


class PassPilotServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            name="passpilot",
            version=__version__,
            text_document_sync_kind=SYNC_KIND,
            protocol_cls=PassPilotProtocol,
        )
        self.settings = Settings()
        self.raw_initialization_options: Any = None
        self.settings_lock = asyncio.Lock()
        self.reported_problems: set[str] = set()
        self.reported_engine_error: str | None = None
        self.initialized = False
        self.shutdown_requested = False
        self.engine = EngineState()
        self.documents: dict[str, DocumentState] = {}
        self.measurements = Measurements(self, self.engine, self.documents)
        self.positions_cache: dict[tuple[str, str], Positions] = {}  # see Positions.of
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
        from .session.status import send_status

        send_status(self, message)

    def show_message(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.WARNING, "%s", message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def stop_work(self) -> None:
        """Cancel every job and end the processes they started (`opt`, LLVM workers)."""
        self.jobs.cancel_all()
        self.measurements.close()
        end_child_processes()

    def exit_now(self) -> NoReturn:
        """Leave the process at once: threads may be inside llama.cpp or an `opt` that cannot be cancelled,
        and nothing they compute is wanted any more (Python would wait for them at exit). The status is
        0 after a `shutdown` request and 1 without one, as LSP asks."""
        try:
            self.stop_work()
        finally:
            logging.shutdown()
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(0 if self.shutdown_requested else 1)


def end_child_processes() -> None:
    """Kill this process's children and their process groups (each `opt` runs in a session of its own).
    Linux only (where /proc lists children); elsewhere they end with their own time limits."""
    children: set[int] = set()
    try:
        for task in Path("/proc/self/task").iterdir():
            try:
                children.update(int(pid) for pid in (task / "children").read_text().split())
            except (OSError, ValueError):
                continue
    except OSError:
        return
    for pid in children:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue


class ChosenErrorAnswers(logging.Filter):
    """pygls logs every error answer with a traceback. An error a handler raises on purpose (a cancelled
    request, a refusal with a message for the user, invalid parameters) is not a fault of the server:
    it becomes one INFO line. Internal errors keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, JsonRpcException) or isinstance(error, JsonRpcInternalError):
            return True
        record.msg, record.args = f"{record.getMessage()}: answered {type(error).__name__}: {error}", ()
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


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
    """Run the server over stdio, or on `HOST:PORT`. Returns 2 for a bad address; otherwise the process
    ends when the connection does (see `PassPilotServer.exit_now`)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=os.environ.get("PASSPILOT_LOG_LEVEL", "WARNING").upper(),
            format="passpilot: %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        if "PASSPILOT_LOG_LEVEL" not in os.environ:
            logging.getLogger("lsp_server").setLevel(logging.INFO)  # PassPilot's own jobs and figures, not pygls' chatter
    logging.getLogger("pygls.protocol.json_rpc").addFilter(ChosenErrorAnswers())
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not port.isdigit():
            print(f"passpilot: --tcp expects HOST:PORT, got {tcp!r}", file=sys.stderr)
            return 2
    server = build_server()
    try:
        if tcp:
            server.start_tcp(host or "127.0.0.1", int(port))
        else:
            stdin, stdout = _protocol_streams()
            server.start_io(stdin, stdout)
    finally:
        server.exit_now()
