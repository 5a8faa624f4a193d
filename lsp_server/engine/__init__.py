"""The optimization engine: candidate sources, measurement through `opt`, choice, write-back."""

from . import defaults
from .cache import ResultCache, default_cache_dir
from .factory import Assembly, EngineSettings, assemble
from .module import (
    FunctionOutcome,
    ModuleOptimization,
    UnknownFunction,
    choice,
    optimize_module,
    splice_functions,
    splice_verified,
    standalone_functions,
    write_back,
)
from .optimizer import Cancelled, FunctionResult, Measurement, Optimizer
from .sources import DEFAULT_SOURCES, OZ, SOURCE_NAMES, Candidate, CoresetSource, ModelSource, RandomSearchSource

__all__ = [
    "DEFAULT_SOURCES",
    "OZ",
    "SOURCE_NAMES",
    "Assembly",
    "Cancelled",
    "Candidate",
    "CoresetSource",
    "EngineSettings",
    "FunctionOutcome",
    "FunctionResult",
    "Measurement",
    "ModelSource",
    "ModuleOptimization",
    "Optimizer",
    "RandomSearchSource",
    "ResultCache",
    "UnknownFunction",
    "assemble",
    "choice",
    "default_cache_dir",
    "defaults",
    "optimize_module",
    "splice_functions",
    "splice_verified",
    "standalone_functions",
    "write_back",
]
