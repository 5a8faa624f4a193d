"""The CLI as users run it: a real process, real opt, exit codes and messages."""

import json
import os
import subprocess
import sys

import pytest

from lsp_server.compiler import run_opt
from lsp_server.engine import standalone_functions
from lsp_server.ir import count_instructions


def passpilot(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "cache")


def test_optimize_json_figures_match_opt(example_text, opt_tool, cache_dir, tmp_path):
    out = tmp_path / "out.ll"
    result = passpilot("optimize", "examples/example.ll", "--json", "--budget", "3", "--sources", "coreset",
                       "--cache-dir", cache_dir, "-o", str(out), cwd=_root())
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["opt"] == {"path": opt_tool.path, "version": opt_tool.version}
    functions = dict((f.name, f) for f in standalone_functions(example_text)[1])
    assert {row["name"] for row in report["functions"]} == set(functions)
    for row in report["functions"]:
        function = functions[row["name"]]
        assert row["best"] <= row["oz"]
        assert count_instructions(run_opt(opt_tool, "default<Oz>", function.text).output) == row["oz"]
        assert count_instructions(run_opt(opt_tool, row["passes"], function.text).output) == row["best"]
        assert row["verified"] is True
    assert report["totals"]["best"] == sum(r["best"] for r in report["functions"])
    check = subprocess.run([opt_tool.path, "-passes=verify", "-disable-output", str(out)], capture_output=True)
    assert check.returncode == 0
    assert count_instructions(out.read_text()) <= report["totals"]["oz"]


def test_optimize_table_and_function_filter(cache_dir):
    result = passpilot("optimize", "examples/example.ll", "--function", "grade", "--budget", "0", "--cache-dir", cache_dir, cwd=_root())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split()[:4] == ["function", "original", "-Oz", "best"]
    assert lines[2].split()[0] == "grade" and len(lines) == 4


def test_unknown_function_is_bad_input(cache_dir):
    result = passpilot("optimize", "examples/example.ll", "--function", "nope", "--cache-dir", cache_dir, cwd=_root())
    assert result.returncode == 2 and "@nope" in result.stderr


def test_malformed_ir_exit_2_with_location(tmp_path):
    path = tmp_path / "bad.ll"
    path.write_text("define i32 @f() {\n  ret i64 0\n}\n")
    result = passpilot("optimize", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:2:7: ")
    assert "Traceback" not in result.stderr


def test_empty_file_exit_2(tmp_path):
    path = tmp_path / "empty.ll"
    path.write_text("")
    result = passpilot("optimize", str(path))
    assert result.returncode == 2 and f"{path}:1:1:" in result.stderr and "empty" in result.stderr


def test_non_utf8_exit_2(tmp_path):
    path = tmp_path / "latin1.ll"
    path.write_bytes(b"; caf\xe9\ndefine void @f() {\n  ret void\n}\n")
    result = passpilot("optimize", str(path))
    assert result.returncode == 2
    assert f"{path}:1:6: invalid UTF-8 byte 0xe9" in result.stderr


def test_missing_opt_exit_3_says_how_to_install(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}
    env.pop("PASSPILOT_OPT", None)
    result = passpilot("optimize", "examples/example.ll", env=env, cwd=_root())
    assert result.returncode == 3
    assert "apt-get install llvm-22" in result.stderr and "Traceback" not in result.stderr


def test_bench_prints_totals_and_times(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "example.ll").write_text((_root() / "examples" / "example.ll").read_text())
    result = passpilot("bench", str(tmp_path), "--budget", "1", "--sources", "coreset", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["totals"]["functions"] == 7
    assert report["totals"]["best"] <= report["totals"]["oz"] < report["totals"]["original"]
    assert 0 < report["seconds_per_function"]["p50"] <= report["seconds_per_function"]["p95"]


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]
