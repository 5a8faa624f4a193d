"""Settings: `initializationOptions`, then `workspace/configuration` (section `passpilot`), re-read on
`workspace/didChangeConfiguration`. Changing `opt`, model or cache settings re-assembles the engine; a
budget change only re-measures.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ..config import SECTION, changed_keys, describe, load_settings
from ..session.documents import use_client_lines
from ..session.engine import build
from ..session.jobs import Job

if TYPE_CHECKING:
    from ..server import PassPilotServer

log = logging.getLogger(__name__)


def register(server: PassPilotServer) -> None:
    server.feature(types.INITIALIZE)(initialize)
    server.feature(types.INITIALIZED)(initialized)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    server.feature(types.SHUTDOWN)(shutdown)
    server.feature(types.EXIT)(exit_server)


def initialize(ls: PassPilotServer, params: types.InitializeParams) -> None:
    use_client_lines(ls, params)
    ls.raw_initialization_options = params.initialization_options
    ls.settings, _ = load_settings(params.initialization_options)  # problems are reported once initialized


async def initialized(ls: PassPilotServer, params: types.InitializedParams) -> None:
    ls.initialized = True
    await apply_settings(ls, None)


async def did_change_configuration(ls: PassPilotServer, params: types.DidChangeConfigurationParams) -> None:
    await apply_settings(ls, params.settings)


def shutdown(ls: PassPilotServer, params: Any = None) -> None:
    """`shutdown`: cancel everything in flight. The other requests are cancelled here, before pygls
    does it: pygls iterates over its table of requests while cancelling, and a cancelled command
    answers at once and leaves that table, which fails the `shutdown` request."""
    ls.shutdown_requested = True
    protocol = ls.protocol
    current = protocol.msg_id
    for msg_id, future in list(protocol._request_futures.items()):  # noqa: SLF001 - see above
        if msg_id != current and not future.done():
            future.cancel()
    ls.stop_work()


def exit_server(ls: PassPilotServer, params: Any = None) -> None:
    """`exit`: leave now, without waiting for work that cannot be interrupted (model inference)."""
    ls.exit_now()


async def fetch_configuration(ls: PassPilotServer, pushed: Any) -> Any:
    """The client's current `passpilot` settings: pulled when the client supports it, else as pushed."""
    if ls.supports("workspace.configuration"):
        try:
            values = await ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
            )
        except Exception as error:  # noqa: BLE001 - fall back to what we have
            log.warning("workspace/configuration failed: %s", error)
        else:
            return values[0] if values else None
    return pushed


async def apply_settings(ls: PassPilotServer, pushed: Any) -> None:
    async with ls.settings_lock:
        configuration = await fetch_configuration(ls, pushed)
        settings, problems = load_settings(ls.raw_initialization_options, configuration)
        messages = [problem.message for problem in problems]
        for message in messages:
            if message not in ls.reported_problems:
                ls.show_message(message, types.MessageType.Warning)
        ls.reported_problems = set(messages)

        old = ls.settings
        ls.settings = settings
        log.info("settings: %s", "; ".join(describe(settings)))
        if ls.engine.settings != settings.engine_settings():
            await reassemble(ls)
        elif "budget" in changed_keys(old, settings):
            ls.measurements.reset(engine_changed=False)
        ls.notify_status()


async def reassemble(ls: PassPilotServer) -> None:
    engine_settings = ls.settings.engine_settings()
    async with Job(ls, "PassPilot: starting the engine", cancellable=False, follow_request=False):
        assembly, error = await ls.run_sync(build, engine_settings)
    previous = ls.engine.assembly
    ls.engine.assembly, ls.engine.error, ls.engine.settings = assembly, error, engine_settings
    ls.engine.generation += 1
    if previous is not None:
        previous.optimizer.close()
    if error is not None:
        if error != ls.reported_engine_error:
            ls.show_message(error, types.MessageType.Error)
        ls.reported_engine_error = error
    else:
        ls.reported_engine_error = None
        for warning in assembly.warnings:
            ls.show_message(f"PassPilot: {warning}", types.MessageType.Warning)
    ls.measurements.reset(engine_changed=True)
