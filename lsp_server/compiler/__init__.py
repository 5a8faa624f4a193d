"""The compiler: finding `opt`, its pass vocabulary, and running it safely."""

from .locate import INSTALL_HINT, OptNotFound, OptTool, find_opt
from .passes import PassListError, PassVocabulary, load_vocabulary, parse_print_passes
from .runner import OptRun, run_opt, verify

__all__ = [
    "INSTALL_HINT",
    "OptNotFound",
    "OptRun",
    "OptTool",
    "PassListError",
    "PassVocabulary",
    "find_opt",
    "load_vocabulary",
    "parse_print_passes",
    "run_opt",
    "verify",
]
