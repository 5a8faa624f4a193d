"""Shared fixtures: the real `opt` and `clang` from Debian's llvm-22/clang-22, and example IR."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.compiler import OptNotFound, find_opt

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "example.ll"


@pytest.fixture(scope="session")
def opt_tool():
    try:
        return find_opt()
    except OptNotFound as error:
        pytest.skip(f"needs LLVM's opt (apt-get install llvm-22): {error}")


@pytest.fixture(scope="session")
def example_text() -> str:
    return EXAMPLE.read_text()


@pytest.fixture
def compile_c(tmp_path):
    """Compile C source the way the corpus does (clang-22 -O0 -disable-O0-optnone), or with extra flags."""
    clang = shutil.which("clang-22") or shutil.which("clang")
    if clang is None:
        pytest.skip("needs clang-22 (apt-get install clang-22)")

    def compile(source: str, *flags: str) -> str:
        path = tmp_path / "input.c"
        path.write_text(source)
        args = [clang, "-S", "-emit-llvm", "-g0", "-o", "-", str(path)]
        args += list(flags) if flags else ["-O0", "-Xclang", "-disable-O0-optnone"]
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout

    return compile


@pytest.fixture
def miscompiling_opt(tmp_path, opt_tool):
    """A faulty `opt` (allowed: it simulates a miscompiling compiler): the real one, but for pass lists other
    than -Oz that contain `when`, every function body it prints becomes `rewrite`. Call it for the path."""

    def make(rewrite: str = "  unreachable", when: str = "") -> str:
        script = tmp_path / "opt"
        script.write_text(
            f"#!{sys.executable}\n"
            "import re, subprocess, sys\n"
            "args = sys.argv[1:]\n"
            "passes = next((a.split('=', 1)[1] for a in args if a.startswith('-passes=')), '')\n"
            f"run = subprocess.run([{opt_tool.path!r}, *args], input=sys.stdin.buffer.read() if passes else None, capture_output=True)\n"
            "out = run.stdout\n"
            f"if run.returncode == 0 and '-S' in args and passes not in ('default<Oz>', 'verify') and {when!r} in passes:\n"
            "    text = re.sub(r'^(define [^\\n]*\\{)\\n.*?^\\}', lambda m: m.group(1) + '\\n" + "' + " + repr(rewrite) + " + '" + "\\n}', out.decode(), flags=re.S | re.M)\n"
            "    out = text.encode()\n"
            "sys.stdout.buffer.write(out); sys.stderr.buffer.write(run.stderr); sys.exit(run.returncode)\n"
        )
        script.chmod(0o755)
        return str(script)

    return make

