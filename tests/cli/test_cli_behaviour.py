"""`passpilot optimize --check-behaviour`: a miscompiling `opt` is caught and its rewrite is not written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.compiler import find_opt
from lsp_server.compiler.behaviour import find_clang
from lsp_server.ir import ModuleLayout, function_instruction_counts, parse

pytestmark = pytest.mark.skipif(find_clang() is None, reason="clang-22 is not installed")

ROOT = Path(__file__).resolve().parents[2]
SOURCE = """
int grade(int score) {
  switch (score / 10) {
  case 10: case 9: return 4;
  case 8: return 3;
  case 7: return 2;
  case 6: return 1;
  default: return 0;
  }
}
int passed(int score) { return grade(score) > 0; }
"""
LISTS = ["sroa,early-cse,instcombine,simplifycfg,gvn,instcombine,simplifycfg,adce", "mem2reg,instcombine,simplifycfg"]


def passpilot(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


@pytest.fixture
def module(compile_c, tmp_path) -> Path:
    path = tmp_path / "grade.ll"
    path.write_text(compile_c(SOURCE))
    return path


@pytest.fixture
def unreachable_opt(miscompiling_opt) -> str:
    """Every list except -Oz turns each function body into `unreachable`."""
    return miscompiling_opt()


def coreset(tmp_path) -> list[str]:
    return ["--sources", "coreset", "--budget", str(len(LISTS)), "--cache-dir", str(tmp_path / "cache")]


def test_a_miscompiling_opt_is_blocked_and_not_written_back(module, unreachable_opt, tmp_path):
    out = tmp_path / "out.ll"
    plain = passpilot("optimize", str(module), "--function", "grade", "--backend", "opt", "--opt", unreachable_opt, *coreset(tmp_path), "--json")
    grade = next(r for r in json.loads(plain.stdout)["functions"] if r["name"] == "grade")
    assert grade["best"] == 1 and "behaviour" not in grade  # without the check the faulty rewrite wins

    result = passpilot(
        "optimize", str(module), "--function", "grade", "--check-behaviour", "--behaviour-trials", "60", "--backend", "opt", "--opt", unreachable_opt,
        *coreset(tmp_path), "--json", "-o", str(out),
    )
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["functions"]}
    assert set(rows) == {"grade"}
    behaviour = rows["grade"]["behaviour"]
    assert behaviour["status"] == "blocked"
    assert behaviour["summary"].startswith("blocked: different results on input @grade(i32 ")
    assert behaviour["summary"].endswith("-Oz was written instead")
    assert behaviour["blocked"][0]["diagnosis"] == "the pass list miscompiles this function (an LLVM bug, or a faulty opt)"
    assert "rewrite: crashed" in behaviour["blocked"][0]["check"]["counterexample"]
    assert behaviour["written"]["source"] == "oz" and rows["grade"]["best"] == rows["grade"]["oz"] > 1
    written = out.read_text()
    layout = ModuleLayout.from_text(written)
    assert all("unreachable" not in layout.function_text(span) for span in layout.functions)
    assert function_instruction_counts(parse(written))["grade"] == rows["grade"]["oz"]
    assert subprocess.run([find_opt().path, "-passes=verify", "-disable-output", str(out)]).returncode == 0


def test_the_table_says_what_was_checked(module, opt_tool, tmp_path):
    result = passpilot("optimize", str(module), "--check-behaviour", "--behaviour-trials", "50", *coreset(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    grade = lines.index(next(line for line in lines if line.startswith("grade ")))
    assert lines[grade + 1].strip().startswith("behaviour: same results on 50 inputs")
    passed = lines.index(next(line for line in lines if line.startswith("passed ")))
    assert lines[passed + 1].strip().startswith("behaviour: not checked: -Oz (LLVM's standard pipeline) is written")


def test_without_clang_the_rewrite_is_not_checked_and_says_so(module, tmp_path):
    env = {**os.environ, "PASSPILOT_CLANG": str(tmp_path / "no-such-clang")}
    result = passpilot("optimize", str(module), "--check-behaviour", *coreset(tmp_path), "--json", env=env)
    assert result.returncode == 0, result.stderr
    grade = next(r for r in json.loads(result.stdout)["functions"] if r["name"] == "grade")
    assert grade["behaviour"]["summary"] == "not checked: clang-22 is not installed"
    assert grade["best"] < grade["oz"]  # not checked is not blocked
