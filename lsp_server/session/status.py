"""The `passpilot/status` notification (docs/design.md): which `opt` and model, and whether jobs run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..server import PassPilotServer

STATUS = "passpilot/status"


def status_payload(ls: PassPilotServer, message: str | None = None) -> dict[str, Any]:
    model = ls.engine.model_info()
    optimizer = ls.engine.optimizer
    return {
        "opt": ls.engine.opt_info(),
        # Which compiler measures: "opt" processes or libLLVM in worker processes (lsp_server/compiler/backend.py).
        "backend": optimizer.backend.identity.name if optimizer is not None else None,
        "model": {"path": model["path"], "profile": model["profile"]} if model else None,
        "busy": ls.jobs.busy,
        "message": message if message is not None else ls.engine.error,
    }


def send_status(ls: PassPilotServer, message: str | None = None) -> None:
    if not ls.initialized:
        return
    ls.protocol.notify(STATUS, status_payload(ls, message))
