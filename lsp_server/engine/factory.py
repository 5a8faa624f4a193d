"""Assembling an optimizer from settings: `opt`, cache, and the candidate sources that are available."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..compiler import OptTool, find_opt, load_vocabulary, open_backend
from . import defaults
from .cache import ResultCache
from .optimizer import Optimizer, parallel_jobs
from .refine import RefineSource, default_refinements
from .sources import CandidateSource, ModelSource, RandomSearchSource, default_coreset, models_dir

log = logging.getLogger(__name__)

DEFAULT_MODEL_FILE = "passpilot.gguf"


@dataclass(frozen=True)
class EngineSettings:
    """What an engine is assembled from; the defaults are `defaults`'s."""

    opt_path: str = ""
    model_path: str = defaults.MODEL_PATH
    model_profile: str = defaults.MODEL_PROFILE
    samples: int = defaults.MODEL_SAMPLES
    gpu_layers: int = defaults.GPU_LAYERS
    model_threads: int = defaults.MODEL_THREADS
    cache_dir: str = ""
    use_cache: bool = True
    jobs: int = defaults.JOBS
    timeout: float = defaults.TIMEOUT_S
    backend: str = defaults.BACKEND  # "auto" | "opt" | "libllvm" (compiler.backend, --backend)


@dataclass
class Assembly:
    optimizer: Optimizer
    model_identity: str | None = None
    model_path: str | None = None
    warnings: list[str] = field(default_factory=list)


def resolve_model_path(setting: str) -> Path | None:
    if setting.strip().lower() == "none":
        return None
    if setting:
        return Path(setting).expanduser()
    shipped = models_dir() / DEFAULT_MODEL_FILE
    return shipped if shipped.is_file() else None


def model_file_key(path: Path, identity: str) -> str:
    """The model's identity for cached proposals: its description, size and modification time (a model
    retrained in place gets new proposals)."""
    try:
        stat = path.stat()
    except OSError:
        return ""
    return f"{identity}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def load_model_source(
    settings: EngineSettings, known_passes, cache: ResultCache | None = None
) -> tuple[CandidateSource | None, str | None, list[str]]:
    path = resolve_model_path(settings.model_path)
    if path is None:
        return None, None, []
    try:
        from ..model import ModelError, load_proposer
    except ImportError as error:
        return None, None, [f"model support is not installed ({error}); `pip install 'passpilot[model]'`"]
    try:
        proposer = load_proposer(
            path, profile=settings.model_profile, gpu_layers=settings.gpu_layers, threads=settings.model_threads,
            known_passes=known_passes
        )
    except ModelError as error:
        return None, None, [str(error)]
    source = ModelSource(proposer, settings.samples, cache=cache, model_key=model_file_key(path, proposer.identity))
    return source, proposer.identity, []


def assemble(settings: EngineSettings, opt: OptTool | None = None) -> Assembly:
    """Raises OptNotFound when there is no usable `opt` (or an explicit `libllvm` backend cannot run);
    everything else degrades with a warning."""
    opt = opt or find_opt(settings.opt_path or None)
    vocabulary = load_vocabulary(opt)
    cache = ResultCache(settings.cache_dir or None) if settings.use_cache else None
    model, identity, warnings = load_model_source(settings, vocabulary.names, cache)
    try:
        refine = default_refinements()
    except ValueError as error:  # a hand-edited file: the other sources still work
        warnings.append(f"refinement edits not loaded: {error}")
        refine = RefineSource([])
    sources: list[CandidateSource] = [default_coreset(), refine, RandomSearchSource(vocabulary.names)]
    if model is not None:
        sources.insert(0, model)
    jobs = parallel_jobs(settings.jobs)
    backend = open_backend(settings.backend, opt, workers=jobs)
    optimizer = Optimizer(
        opt, sources=sources, cache=cache, vocabulary=vocabulary, jobs=jobs, timeout=settings.timeout, backend=backend
    )
    path = resolve_model_path(settings.model_path)
    return Assembly(optimizer, identity, str(path) if path and identity else None, warnings)
