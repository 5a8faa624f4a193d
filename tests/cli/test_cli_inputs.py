"""Issue 12's input defects through the real CLI: each failed (a traceback or a wrong result) before its fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server import cli
from lsp_server.compiler import run_opt, verify
from lsp_server.engine import standalone_functions
from lsp_server.ir import ModuleLayout, count_instructions

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--model", "none", "--budget", "2", "--no-cache"]


def passpilot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def write(tmp_path: Path, text: str | bytes, name: str = "in.ll") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


MULTI_LINE = """target triple = "x86_64-pc-linux-gnu"
declare i32
  @g(i32)
define i32 @f(i32 %x) {
  %a = call i32 @g(i32 %x), !annotation !0
  %b = add i32 %a, 0
  ret i32 %b
}
!0 = ; a comment
  !{!"x",
    !"y"}
"""


def test_multi_line_declarations_and_metadata_optimize(tmp_path):
    out = tmp_path / "out.ll"
    result = passpilot("optimize", str(write(tmp_path, MULTI_LINE)), *FAST, "--json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    row = json.loads(result.stdout)["functions"][0]
    assert row["name"] == "f" and row["best"] == 2 and row["verified"]
    assert subprocess.run(["opt-22", "-passes=verify", "-disable-output", str(out)]).returncode == 0


@pytest.mark.parametrize(
    "text, where, message",
    [
        ('target datalayout = "\U0001F600"\ndefine i32 @f() {\n  ret i32 0\n}\n', ":1:", "non-ASCII"),
        ('target triple = "X86_64"\ndefine i32 @f() {\n  ret i32 0\n}\n', ":1:", "unknown target triple"),
    ],
)
def test_input_llvm_rejects_is_a_located_error(tmp_path, text, where, message):
    result = passpilot("optimize", str(write(tmp_path, text)), *FAST, "-o", str(tmp_path / "out.ll"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert where in result.stderr and message in result.stderr
    assert not (tmp_path / "out.ll").exists()


def test_two_definitions_on_one_line_are_both_reported(tmp_path):
    text = (
        "define i32 @f(i32 %x) { %a = add i32 %x, 0 ret i32 %a } "
        "define i32 @g(i32 %x) { %r = call i32 @f(i32 %x) %s = add i32 %r, 0 ret i32 %s }\n"
    )
    out = tmp_path / "out.ll"
    result = passpilot("optimize", str(write(tmp_path, text)), *FAST, "--json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["functions"]}
    assert set(rows) == {"f", "g"}
    assert all(row["verified"] for row in rows.values())
    assert count_instructions(out.read_text()) == rows["f"]["best"] + rows["g"]["best"]


def test_non_ascii_names_are_optimized_and_callers_written_back(tmp_path, opt_tool):
    text = """define internal i32 @"\u00e9t\u00e9"(i32 %x) {
  %a = add i32 %x, 0
  %b = mul i32 %a, 1
  ret i32 %b
}
define i32 @caller(i32 %x) {
  %r = call i32 @"\\C3\\A9t\\C3\\A9"(i32 %x)
  %s = add i32 %r, 0
  ret i32 %s
}
"""
    out = tmp_path / "out.ll"
    result = passpilot("optimize", str(write(tmp_path, text)), *FAST, "--json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["functions"]}
    assert rows["\u00e9t\u00e9"]["best"] is not None and rows["\u00e9t\u00e9"]["verified"]
    assert rows["caller"]["verified"]
    assert verify(opt_tool, out.read_text()).ok


def test_computed_goto_figures_are_those_of_the_whole_module(tmp_path, compile_c, opt_tool):
    text = compile_c(
        """
        int run(const unsigned char *code, int n) {
            static void *labels[] = {&&inc, &&dbl, &&stop};
            int acc = 0, pc = 0;
            goto *labels[code[pc++] % 3];
        inc: acc += 1; if (pc >= n) return acc; goto *labels[code[pc++] % 3];
        dbl: acc *= 2; if (pc >= n) return acc; goto *labels[code[pc++] % 3];
        stop: return acc;
        }
        """
    )
    result = passpilot("optimize", str(write(tmp_path, text)), *FAST, "--json")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)["functions"][0]
    assert row["oz"] == count_instructions(run_opt(opt_tool, "default<Oz>", text).output)


def test_unwritable_output_is_refused_before_work(tmp_path):
    source = write(tmp_path, MULTI_LINE)
    result = passpilot("optimize", str(source), *FAST, "-o", str(tmp_path / "missing" / "out.ll"))
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr
    result = passpilot("optimize", str(source), *FAST, "-o", str(tmp_path))
    assert result.returncode == 2 and "is a folder" in result.stderr


def test_a_failing_write_leaves_the_input_whole(tmp_path, monkeypatch, capsys):
    """Writing onto the input: a write that fails half-way must not truncate it."""
    source = write(tmp_path, MULTI_LINE * 1)
    before = source.read_bytes()
    real_fdopen = cli.os.fdopen

    class FailingStream:
        def __init__(self, stream):
            self.stream = stream

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

        def write(self, text):
            self.stream.write(text[:10])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli.os, "fdopen", lambda *a, **k: FailingStream(real_fdopen(*a, **k)))
    status = cli.main(["optimize", str(source), *FAST, "-o", str(source)])
    assert status == 2
    assert "No space left on device" in capsys.readouterr().err
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ll"]  # no temporary file left behind


def test_standalone_extraction_of_odd_module_matches_llvm_extract(tmp_path, opt_tool):
    """Multi-line entities: our standalone module counts what `llvm-extract` keeps."""
    path = write(tmp_path, MULTI_LINE)
    ours = standalone_functions(MULTI_LINE)[1][0].text
    extracted = subprocess.run(
        ["llvm-extract-22", "--func=f", "-S", "-o", "-", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert count_instructions(ours) == count_instructions(extracted)
    assert ModuleLayout.from_text(ours).function("f") is not None


def test_anonymous_functions_are_measured_and_written_back(tmp_path, opt_tool):
    text = """@0 = private constant [3 x i32] [i32 1, i32 2, i32 3]
define internal i32 @1(i32 %x) {
  %p = getelementptr [3 x i32], ptr @0, i32 0, i32 %x
  %v = load i32, ptr %p
  %w = add i32 %v, 0
  ret i32 %w
}
define i32 @user(i32 %x) {
  %r = call i32 @1(i32 %x)
  ret i32 %r
}
"""
    out = tmp_path / "out.ll"
    result = passpilot("optimize", str(write(tmp_path, text)), *FAST, "--json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["functions"]}
    assert rows["1"]["oz"] is not None and rows["1"]["verified"], rows["1"]
    assert verify(opt_tool, out.read_text()).ok
