"""Shared fixtures: the real `opt` and `clang` from Debian's llvm-22/clang-22, and example IR."""

from __future__ import annotations

import shutil
import subprocess
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
