"""A CPU-bound process on each core, for benchmarks that measure PassPilot on a busy machine.

    with busy_cores():          # one `while True: pass` process per core
        ...                     # measure
    # the processes are stopped (by their ids) when the block ends, even on an error

Where the kernel groups processes by session for scheduling (`/proc/sys/kernel/sched_autogroup_enabled`,
on by default in Debian's and Ubuntu's kernels), the session decides what the busy processes take: in
their own session (`own_session=True`, the default), they are another program, as a build started in a
terminal is; in the benchmark's session, they share its group's CPU share with the measured process, as
on a kernel without autogroup, which is the harder case on a machine that other work keeps busy.

Used by `scripts/bench_model_threads.py` and `scripts/bench_startup.py`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsp_server.model.runtime import usable_cores  # noqa: E402  (the count the model's threads are chosen from)

SPIN = "while True:\n    pass\n"


@contextmanager
def busy_cores(count: int = 0, *, own_session: bool = True) -> Iterator[list[int]]:
    """Start `count` (0: one per usable core) busy-looping processes; yields their ids; stops them after."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=own_session
        )
        for _ in range(count or usable_cores())
    ]
    # A SIGTERM to the benchmark must stop them too (those in their own session are not in its process group).
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        time.sleep(0.5)  # let the scheduler see them busy
        yield [process.pid for process in processes]
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def autogroup() -> str:
    """Whether the scheduler groups processes by session ("on", "off", or "unknown")."""
    try:
        return {"1": "on", "0": "off"}.get(Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip(), "unknown")
    except OSError:
        return "unknown"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
