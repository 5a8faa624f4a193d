import os
import stat
import threading
import time

import pytest

from lsp_server.compiler import OptNotFound, OptTool, find_opt, run_opt
from lsp_server.ir import count_instructions

MODULE = "define i32 @f(i32 %x) {\n  %a = add i32 %x, 0\n  ret i32 %a\n}\n"


def _fake_opt(tmp_path, body: str) -> OptTool:
    """A stand-in `opt` that misbehaves; real opt everywhere else."""
    path = tmp_path / "opt-fake"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return OptTool(str(path), "22.1.8")


def test_real_opt_applies_passes(opt_tool):
    run = run_opt(opt_tool, "instcombine", MODULE)
    assert run.ok and count_instructions(run.output) == 1


def test_crashing_opt_is_a_failed_run(tmp_path):
    run = run_opt(_fake_opt(tmp_path, "cat >/dev/null; echo 'Stack dump:' >&2; kill -SEGV $$"), "instcombine", MODULE)
    assert not run.ok
    assert "crashed" in run.error and "SIGSEGV" in run.error


def test_failing_opt_reports_its_message(tmp_path):
    run = run_opt(_fake_opt(tmp_path, "cat >/dev/null; echo 'opt: unknown pass name' >&2; exit 1"), "instcombine", MODULE)
    assert not run.ok and "status 1" in run.error and "unknown pass name" in run.error


def test_hanging_opt_times_out(tmp_path):
    started = time.monotonic()
    run = run_opt(_fake_opt(tmp_path, "exec sleep 60"), "instcombine", MODULE, timeout=1.0)
    assert not run.ok and "timed out" in run.error
    assert time.monotonic() - started < 10


def test_cancel_stops_a_running_opt(tmp_path):
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    run = run_opt(_fake_opt(tmp_path, "exec sleep 60"), "instcombine", MODULE, timeout=30, cancel=cancel)
    assert run.error == "cancelled"


def test_memory_limit_is_enforced(tmp_path, opt_tool):
    # 64 MiB is far below what opt needs just to load LLVM, so it must fail rather than succeed.
    run = run_opt(opt_tool, "instcombine", MODULE, memory_mb=64)
    assert not run.ok


def test_missing_opt_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PASSPILOT_OPT", raising=False)
    with pytest.raises(OptNotFound) as caught:
        find_opt()
    assert "apt-get install llvm-22" in str(caught.value)


def test_setting_then_environment_then_path(monkeypatch, opt_tool):
    monkeypatch.setenv("PASSPILOT_OPT", opt_tool.path)
    assert find_opt().path == opt_tool.path
    with pytest.raises(OptNotFound):
        find_opt("/nonexistent/opt")
    monkeypatch.delenv("PASSPILOT_OPT")
    assert find_opt().path == opt_tool.path
