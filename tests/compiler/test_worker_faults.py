"""Whatever happens inside a libLLVM worker kills at most that worker: the candidate fails with the reason,
the worker is replaced and reaped, and the next candidate runs. No caller sees an exception.

The faults are real (an abort, a NULL read, an endless loop, allocation up to the memory limit, a reply
that is not IR), raised inside the worker by its test-only hook: PASSPILOT_WORKER_FAULTS=1 in the worker's
environment, and a `; passpilot-fault: KIND` comment in the module (see llvm_worker.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from .conftest import start_libllvm

MODULE = "define i32 @f(i32 %x) {\n  %a = add i32 %x, 0\n  ret i32 %a\n}\n"
MEMORY_MB = 1024


def faulty(kind: str) -> str:
    return f"; passpilot-fault: {kind}\n{MODULE}"


@pytest.fixture
def pool(opt_tool, monkeypatch):
    monkeypatch.setenv("PASSPILOT_WORKER_FAULTS", "1")
    backend = start_libllvm(opt_tool, workers=1, memory_mb=MEMORY_MB)
    yield backend
    backend.close()


def _reaped(pid: int) -> bool:
    """Neither running nor a zombie: gone from /proc."""
    return not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("abort", "LLVM aborted (SIGABRT): LLVM ERROR: injected fatal error"),
        ("segv", "LLVM crashed (SIGSEGV)"),
        ("oom", "out of memory"),
    ],
)
def test_a_dying_worker_is_one_failed_candidate(pool, kind, reason):
    [first] = pool.pids()
    result = pool.run(faulty(kind), "instcombine")
    assert not result.ok and result.error.startswith(reason), result.error
    assert not result.transient
    assert _reaped(first)
    following = pool.run(MODULE, "instcombine")
    assert following.ok and following.count == 1
    assert pool.pids() and pool.pids() != [first]


def test_a_hanging_worker_times_out_and_is_replaced(pool):
    [first] = pool.pids()
    started = time.monotonic()
    result = pool.run(faulty("hang"), "instcombine", timeout=1.0)
    assert not result.ok and result.error == "LLVM timed out after 1 s" and result.transient
    assert time.monotonic() - started < 10
    assert _reaped(first)
    assert pool.run(MODULE, "instcombine").count == 1


def test_cancel_kills_the_worker_running_the_candidate(pool):
    [first] = pool.pids()
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    result = pool.run(faulty("hang"), "instcombine", timeout=60, cancel=cancel)
    assert result.error == "cancelled" and result.transient
    assert _reaped(first)
    assert pool.run(MODULE, "instcombine").count == 1


def test_printed_garbage_is_a_failed_candidate(pool):
    """A module the worker prints is accepted only when it parses, verifies and counts the same here."""
    printed = pool.run(faulty("garbage"), "instcombine", want_output=True)
    assert not printed.ok and "does not parse or verify" in printed.error and printed.output is None
    assert pool.run(MODULE, "instcombine", want_output=True).count == 1


def test_without_the_variable_the_fault_comment_is_ignored(opt_tool):
    backend = start_libllvm(opt_tool, workers=1)
    try:
        assert backend.run(faulty("segv"), "instcombine").count == 1
    finally:
        backend.close()


def test_close_stops_idle_and_busy_workers(opt_tool, monkeypatch):
    monkeypatch.setenv("PASSPILOT_WORKER_FAULTS", "1")
    backend = start_libllvm(opt_tool, workers=2)
    outcome = {}
    busy = threading.Thread(target=lambda: outcome.update(result=backend.run(faulty("hang"), "instcombine", timeout=60)))
    busy.start()
    deadline = time.monotonic() + 10
    while len(backend.pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = backend.pids()
    assert len(pids) == 2
    backend.close()
    busy.join(timeout=10)
    assert not busy.is_alive()
    assert outcome["result"].error == "the compiler backend was closed" and outcome["result"].transient
    assert all(_reaped(pid) for pid in pids)
    after = backend.run(MODULE, "instcombine")
    assert not after.ok and after.transient


def _running_in_group(group: int) -> list[int]:
    """Processes of a process group still running (not zombies)."""
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            running.append(int(stat.parent.name))
    return running


def _fresh_worker(pool) -> int:
    """Start the pool's fresh worker (the one that prints modules) and return its pid."""
    before = set(pool.pids())
    assert pool.run(MODULE, "instcombine", want_output=True).count == 1
    [fresh] = set(pool.pids()) - before
    return fresh


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("abort", "LLVM aborted (SIGABRT): LLVM ERROR: injected fatal error"),
        ("segv", "LLVM crashed (SIGSEGV)"),
        ("oom", "out of memory"),
    ],
)
def test_a_dying_child_of_a_fresh_worker_is_one_failed_candidate(pool, kind, reason):
    """A fresh worker runs each request in a forked child; the child's death is reported as a worker's."""
    fresh = _fresh_worker(pool)
    result = pool.run(faulty(kind), "instcombine", want_output=True)
    assert not result.ok and result.error.startswith(reason) and not result.transient, result.error
    assert _reaped(fresh)
    following = pool.run(MODULE, "instcombine", want_output=True)
    assert following.ok and following.count == 1 and following.output


def test_a_hanging_child_of_a_fresh_worker_is_killed_with_it(pool):
    fresh = _fresh_worker(pool)
    result = pool.run(faulty("hang"), "instcombine", want_output=True, timeout=1.0)
    assert not result.ok and result.error == "LLVM timed out after 1 s" and result.transient
    assert _reaped(fresh)
    deadline = time.monotonic() + 5
    while _running_in_group(fresh) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _running_in_group(fresh) == []  # the forked child spinning in its endless loop is gone too
    assert pool.run(MODULE, "instcombine", want_output=True).count == 1
