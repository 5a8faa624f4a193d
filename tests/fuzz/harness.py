"""Run one fuzzed input through the real CLI in-process and classify what happened.

A traceback (an exception escaping `main`, or a log record carrying one), a run past the time limit, an
exit code other than 0 or 2, or an `-o` output that `opt` rejects is a defect; everything else is fine.
"""

from __future__ import annotations

import contextlib
import io
import logging
import signal
import subprocess
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from lsp_server import cli

DEFECTS = ("traceback", "hang", "unexpected-exit", "unverified-output")


class _TimeUp(Exception):
    pass


class _TracebackRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.tracebacks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.tracebacks.append("".join(traceback.format_exception(*record.exc_info)))


@dataclass(frozen=True)
class Outcome:
    status: str  # ok, bad-input, or one of DEFECTS
    exit_code: int | None
    seconds: float
    detail: str = ""

    @property
    def defect(self) -> bool:
        return self.status in DEFECTS


def run_cli(data: bytes, workdir: Path, *, extra: list[str] | None = None, time_limit: float = 60.0, opt: str = "opt-22") -> Outcome:
    source = workdir / "fuzzed.ll"
    output = workdir / "fuzzed.out.ll"
    source.write_bytes(data)
    output.unlink(missing_ok=True)
    argv = ["optimize", str(source), "-o", str(output), "--model", "none", "--no-cache", *(extra or ["--budget", "1"])]
    recorder = _TracebackRecorder()
    logging.getLogger().addHandler(recorder)
    stdout, stderr = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _raise_time_up)
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.main(argv)
    except _TimeUp:
        return Outcome("hang", None, time.monotonic() - started, f"still running after {time_limit:g} s")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 - exactly what the fuzzer looks for
        return Outcome("traceback", None, time.monotonic() - started, traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        logging.getLogger().removeHandler(recorder)
    seconds = time.monotonic() - started
    if recorder.tracebacks:
        return Outcome("traceback", code, seconds, recorder.tracebacks[0])
    if "Traceback (most recent call last)" in stderr.getvalue():
        return Outcome("traceback", code, seconds, stderr.getvalue()[-2000:])
    if code == 2:
        return Outcome("bad-input", code, seconds, stderr.getvalue().strip().splitlines()[0] if stderr.getvalue().strip() else "")
    if code != 0:
        return Outcome("unexpected-exit", code, seconds, stderr.getvalue()[-2000:])
    checked = subprocess.run([opt, "-passes=verify", "-disable-output", str(output)], capture_output=True, text=True, timeout=120)
    if checked.returncode != 0:
        return Outcome("unverified-output", code, seconds, checked.stderr[-2000:])
    return Outcome("ok", code, seconds)


def _raise_time_up(signum, frame):
    raise _TimeUp()
