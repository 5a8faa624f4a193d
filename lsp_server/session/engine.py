"""The assembled engine the server uses, or why there is none (no `opt`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..compiler import OptNotFound
from ..engine import Assembly, EngineSettings, Optimizer, assemble

log = logging.getLogger(__name__)


@dataclass
class EngineState:
    settings: EngineSettings | None = None
    assembly: Assembly | None = None
    error: str | None = None  # e.g. the OptNotFound message with the install hint
    generation: int = 0  # bumped on every re-assembly: results of an older engine are dropped

    @property
    def optimizer(self) -> Optimizer | None:
        return self.assembly.optimizer if self.assembly else None

    @property
    def ready(self) -> bool:
        return self.assembly is not None

    def opt_info(self) -> dict[str, str] | None:
        optimizer = self.optimizer
        return {"path": optimizer.opt.path, "version": optimizer.opt.version} if optimizer else None

    def model_info(self) -> dict[str, str] | None:
        if self.assembly is None or self.assembly.model_identity is None or self.settings is None:
            return None
        return {"path": self.assembly.model_path or "", "profile": self.settings.model_profile, "identity": self.assembly.model_identity}


def build(settings: EngineSettings) -> tuple[Assembly | None, str | None]:
    """Assemble an engine (blocking: runs `opt --version`, `--print-passes`, loads the model)."""
    try:
        assembly = assemble(settings)
    except OptNotFound as error:
        return None, str(error)
    except Exception as error:  # noqa: BLE001 - a broken setup must not take the server down
        log.exception("assembling the engine failed")
        return None, f"PassPilot could not start its engine: {error}"
    warm_up(assembly)
    return assembly, None


def warm_up(assembly: Assembly) -> None:
    """Load the model now, while the engine starts, rather than on the first function the user opens (the
    CLI keeps it lazy: `--budget 0` never needs it). A model that fails to load is reported then as now."""
    model = assembly.optimizer.sources.get("model")
    load = getattr(getattr(model, "proposer", None), "load", None)
    if load is None:
        return
    try:
        load()
    except Exception as error:  # noqa: BLE001 - the first proposal reports it again, as a source with nothing to say
        log.warning("the model did not load: %s", error)
