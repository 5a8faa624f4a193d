"""Compiler backends: apply a checked pass list to a module and count the result.

Two implementations of one small interface: `OptBackend` runs an `opt` process per candidate (the
reference, and the fallback), `LibLLVMBackend` (libllvm.py) runs the same pipelines in persistent worker
processes that load the libLLVM of the same LLVM version. A failing candidate is a `CompileResult` with
the reason, never an exception. Callers check pass lists with `PassVocabulary.check` first.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..ir import InvalidIR, function_instruction_counts, parse
from .locate import OptNotFound, OptTool
from .runner import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, run_opt

log = logging.getLogger(__name__)

BACKEND_CHOICES = ("auto", "opt", "libllvm")


class BackendUnavailable(OptNotFound):
    """The backend asked for cannot run here; `reason` says why."""

    def __init__(self, reason: str):
        Exception.__init__(self, f"the libllvm compiler backend is not available: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class CompileResult:
    count: int | None  # instructions of all defined functions, when the candidate succeeded
    error: str | None  # why it failed
    seconds: float
    output: str | None = field(default=None, repr=False)  # the printed module, when asked for (opt always has it)
    defined: frozenset[str] = frozenset()  # names of the functions still defined afterwards
    transient: bool = False  # the failure says nothing about the candidate (timeout, cancel, no worker)

    @property
    def ok(self) -> bool:
        return self.count is not None


@dataclass(frozen=True)
class BackendIdentity:
    name: str  # "opt" or "libllvm"
    path: str  # the opt executable or the libLLVM library
    version: str
    fingerprint: str  # name, version and the file's resolved path, size and mtime: the result cache key

    def report(self) -> dict[str, str]:
        """What `optimize --json` and `bench --json` say about the backend that ran."""
        return {"name": self.name, ("path" if self.name == "opt" else "library"): self.path, "version": self.version}


def identify(name: str, path: str, version: str) -> BackendIdentity:
    """Two binaries that report the same version are still told apart by their files."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
        file = f"{resolved}:{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        file = str(resolved)
    return BackendIdentity(name, path, version, f"{name}:{version}:{file}")


class CompilerBackend(Protocol):
    identity: BackendIdentity

    def run(
        self,
        module_text: str,
        checked_passes: str,
        *,
        want_output: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
        cancel: threading.Event | None = None,
    ) -> CompileResult:
        """Apply a pass list already checked by `PassVocabulary.check`; never raises for a failing candidate."""
        ...

    def close(self) -> None: ...


class OptBackend:
    """An `opt` process per candidate. Its output is accepted only if it parses and verifies here."""

    def __init__(self, opt: OptTool, *, memory_mb: int = DEFAULT_MEMORY_MB):
        self.opt = opt
        self.memory_mb = memory_mb
        self.identity = identify("opt", opt.path, opt.version)

    def run(
        self,
        module_text: str,
        checked_passes: str,
        *,
        want_output: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
        cancel: threading.Event | None = None,
    ) -> CompileResult:
        run = run_opt(self.opt, checked_passes, module_text, timeout=timeout, memory_mb=self.memory_mb, cancel=cancel)
        if not run.ok:
            error = run.error or "opt failed"
            transient = error == "cancelled" or "timed out" in error or error.startswith("could not start")
            return CompileResult(None, error, run.seconds, transient=transient)
        try:
            counts = function_instruction_counts(parse(run.output, verify=True))
        except InvalidIR as invalid:
            return CompileResult(None, f"opt printed IR that does not parse or verify: {invalid}", run.seconds)
        return CompileResult(sum(counts.values()), None, run.seconds, run.output, frozenset(counts))

    def close(self) -> None:
        pass


def printed_module_problem(output: str, count: int) -> str | None:
    """Why a printed module cannot be accepted with `count` instructions (it must parse, verify and be
    counted the same here), or None."""
    try:
        counted = sum(function_instruction_counts(parse(output, verify=True)).values())
    except InvalidIR as invalid:
        return f"printed IR that does not parse or verify: {invalid}"
    return None if counted == count else f"printed a module of {counted} instructions, but counted {count}"


AUTO_ENVIRONMENT = "PASSPILOT_BACKEND"  # "opt": `auto` takes `opt` processes without trying libLLVM


def open_backend(choice: str, opt: OptTool, *, workers: int, memory_mb: int = DEFAULT_MEMORY_MB) -> CompilerBackend:
    """The backend for a setting: `auto` takes libllvm when the library of `opt`'s version loads.

    One log line says which backend runs and why. An explicit `libllvm` that cannot run raises
    BackendUnavailable (an OptNotFound: the CLI exits 3, the server shows one error).
    """
    if choice not in BACKEND_CHOICES:
        raise ValueError(f"unknown compiler backend {choice!r}; choose from {', '.join(BACKEND_CHOICES)}")
    if choice == "opt":
        log.info("compiler backend: opt processes (%s), as set", opt.path)
        return OptBackend(opt, memory_mb=memory_mb)
    if choice == "auto" and os.environ.get(AUTO_ENVIRONMENT, "").strip().lower() == "opt":
        # A machine where libLLVM misbehaves (or a check that everything holds with `opt` alone).
        log.info("compiler backend: opt processes (%s), as %s=opt says", opt.path, AUTO_ENVIRONMENT)
        return OptBackend(opt, memory_mb=memory_mb)
    from .libllvm import LibLLVMBackend

    try:
        backend = LibLLVMBackend.start(opt, workers=workers, memory_mb=memory_mb)
    except BackendUnavailable as unavailable:
        if choice == "libllvm":
            raise
        log.info("compiler backend: opt processes (%s), because %s", opt.path, unavailable.reason)
        return OptBackend(opt, memory_mb=memory_mb)
    log.info("compiler backend: libLLVM %s (%s) in up to %d worker processes", backend.identity.version, backend.identity.path, workers)
    return backend
