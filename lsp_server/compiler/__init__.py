"""The compiler: finding `opt`, its pass vocabulary, and running pass lists safely (opt or libLLVM)."""

from .backend import (
    BACKEND_CHOICES,
    BackendIdentity,
    BackendUnavailable,
    CompileResult,
    CompilerBackend,
    OptBackend,
    open_backend,
)
from .locate import INSTALL_HINT, OptNotFound, OptTool, find_opt
from .passes import PassListError, PassVocabulary, load_vocabulary, parse_print_passes
from .runner import OptRun, run_opt, verify

__all__ = [
    "BACKEND_CHOICES",
    "INSTALL_HINT",
    "BackendIdentity",
    "BackendUnavailable",
    "CompileResult",
    "CompilerBackend",
    "OptBackend",
    "OptNotFound",
    "OptRun",
    "OptTool",
    "PassListError",
    "PassVocabulary",
    "find_opt",
    "load_vocabulary",
    "open_backend",
    "parse_print_passes",
    "run_opt",
    "verify",
]
