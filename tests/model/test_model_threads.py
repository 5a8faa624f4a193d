"""`model.threads`: the automatic choice, and the setting reaching llama.cpp (real model, real llama.cpp)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.config import load_settings
from lsp_server.engine.sources import models_dir
from lsp_server.model import load_proposer
from lsp_server.model.runtime import MAX_AUTOMATIC_THREADS, ONE_THREAD_MODEL_BYTES, automatic_threads

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = models_dir() / "passpilot.gguf"
GIB = 2**30


@pytest.mark.parametrize(
    ("model_bytes", "cores", "threads"),
    [
        (2_793_536, 2, 1),  # the shipped model: one thread, however many cores
        (2_793_536, 64, 1),
        (ONE_THREAD_MODEL_BYTES - 1, 16, 1),
        (4 * GIB, 2, 1),  # a 7B Q4: every core but one
        (4 * GIB, 4, 3),
        (4 * GIB, 1, 1),
        (4 * GIB, 64, MAX_AUTOMATIC_THREADS),
    ],
)
def test_automatic_threads(model_bytes, cores, threads):
    assert automatic_threads(model_bytes, cores) == threads
    assert automatic_threads(model_bytes, cores) < cores or cores == 1


def test_shipped_model_gets_one_thread_and_an_explicit_count_is_kept(tiny_gguf):
    assert load_proposer(SHIPPED).threads == 1
    proposer = load_proposer(tiny_gguf, threads=2)
    try:
        assert proposer.threads == 2
        assert proposer.propose("define i32 @f(i32 %x) {\n  ret i32 %x\n}\n", samples=1) is not None
    finally:
        proposer.close()


def test_threads_setting_reaches_the_engine_settings():
    settings, problems = load_settings({"model": {"threads": 3}})
    assert not problems and settings.engine_settings().model_threads == 3
    settings, problems = load_settings({"model.threads": -1})
    assert settings.engine_settings().model_threads == 0
    assert [p.key for p in problems] == ["passpilot.model.threads"]


def test_cli_threads_option_reaches_llama_cpp(tmp_path):
    def loaded_line(*options: str) -> str:
        run = subprocess.run(
            [sys.executable, "-m", "lsp_server.cli", "-v", "optimize", "examples/example.ll", "--function", "grade",
             "--budget", "1", "--sources", "model", "--no-cache", *options],
            capture_output=True, text=True, timeout=300, cwd=ROOT,
        )
        assert run.returncode == 0, run.stderr
        return next(line for line in run.stderr.splitlines() if "loaded passpilot" in line)

    assert loaded_line("--threads", "2").endswith("2 threads)")  # the default (1) is test_shipped_model_gets_one_thread
