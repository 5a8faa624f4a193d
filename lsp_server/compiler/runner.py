"""Running `opt` on untrusted IR: an argument list, a time limit, a memory limit, cancellable.

Whatever happens inside `opt` (a crash, a hang, garbage output) comes back as an `OptRun` that
says why it failed; nothing here raises for a failing candidate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from .locate import OptTool

DEFAULT_TIMEOUT_S = 20.0
DEFAULT_MEMORY_MB = 4096
_ENV = {
    **os.environ,
    "LLVM_DISABLE_CRASH_REPORT": "1",
    "LLVM_DISABLE_SYMBOLIZATION": "1",
}


@dataclass(frozen=True)
class OptRun:
    output: str | None  # the printed module when `opt` succeeded
    error: str | None  # why it failed
    seconds: float

    @property
    def ok(self) -> bool:
        return self.output is not None


def run_opt(
    opt: OptTool,
    checked_passes: str,
    module_text: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    cancel: threading.Event | None = None,
) -> OptRun:
    """Apply an already-checked pass list (see `PassVocabulary.check`) and return the printed module."""
    return _run(opt, [f"-passes={checked_passes}", "-S", "-o", "-"], module_text, timeout, memory_mb, cancel)


def print_changes(
    opt: OptTool,
    checked_passes: str,
    module_text: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    cancel: threading.Event | None = None,
) -> OptRun:
    """Apply an already-checked pass list printing the whole module after each pass that changed it
    (`-print-changed -print-module-scope`, for the pass explorer); `output` holds those dumps."""
    arguments = [f"-passes={checked_passes}", "-print-changed", "-print-module-scope", "-disable-output"]
    return _run(opt, arguments, module_text, timeout, memory_mb, cancel, output_on_stderr=True)


def verify(opt: OptTool, module_text: str, *, timeout: float = 60.0) -> OptRun:
    """`opt -passes=verify` on a whole module; `output` is empty text when it verifies."""
    return _run(opt, ["-passes=verify", "-disable-output"], module_text, timeout, DEFAULT_MEMORY_MB, None)


def _run(
    opt: OptTool,
    arguments: list[str],
    stdin: str,
    timeout: float,
    memory_mb: int,
    cancel: threading.Event | None,
    *,
    output_on_stderr: bool = False,  # LLVM prints its IR dumps (-print-changed) on stderr
) -> OptRun:
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            [opt.path, *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_ENV,
            preexec_fn=_limits(memory_mb) if sys.platform != "win32" else None,
            start_new_session=True,
        )
    except OSError as error:
        return OptRun(None, f"could not start {opt.path}: {error}", time.monotonic() - started)
    deadline = started + timeout
    pending_input: str | None = stdin
    while True:
        step = min(0.25, max(deadline - time.monotonic(), 0.01))
        try:
            stdout, stderr = process.communicate(pending_input, timeout=step)
            break
        except subprocess.TimeoutExpired:
            pending_input = None
            if cancel is not None and cancel.is_set():
                _kill(process)
                return OptRun(None, "cancelled", time.monotonic() - started)
            if time.monotonic() >= deadline:
                _kill(process)
                return OptRun(None, f"opt timed out after {timeout:g} s", time.monotonic() - started)
        except OSError as error:  # e.g. opt exited before reading its input
            _kill(process)
            return OptRun(None, f"opt failed: {error}", time.monotonic() - started)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        return OptRun(None, _describe_failure(process.returncode, stderr), seconds)
    return OptRun(stderr if output_on_stderr else stdout, None, seconds)


def _describe_failure(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        reason = f"opt crashed ({name})"
    else:
        reason = f"opt exited with status {returncode}"
    detail = next((line.strip() for line in stderr.splitlines() if line.strip()), "")
    return f"{reason}: {detail[:300]}" if detail else reason


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    try:
        process.communicate(timeout=5)
    except (subprocess.TimeoutExpired, OSError, ValueError):
        pass


def _limits(memory_mb: int):
    def apply() -> None:
        import resource

        limit = memory_mb * 1024 * 1024
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (ValueError, OSError):
            pass

    return apply
