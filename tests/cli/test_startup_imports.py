"""`passpilot optimize` imports only what its job needs: never the language server's libraries, and
llama.cpp only when the model is asked (each import is start-up time: scripts/bench_startup.py)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from lsp_server import cli
code = cli.main(sys.argv[1:])
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"pygls", "lsprotocol", "llama_cpp", "numpy", "jinja2"})
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def imported(*args: str) -> list[str]:
    run = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    report = json.loads(run.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, run.stderr
    return report["heavy"]


def test_optimize_without_model_work_imports_neither_lsp_nor_llama_cpp():
    # Budget 0 is -Oz alone: the model is opened (its file checked) but never asked.
    assert imported("optimize", "examples/example.ll", "--function", "grade", "--budget", "0", "--no-cache") == []


def test_optimize_with_the_model_imports_llama_cpp_but_no_lsp():
    heavy = imported("optimize", "examples/example.ll", "--function", "grade", "--budget", "1", "--sources", "model", "--no-cache")
    assert "llama_cpp" in heavy and "pygls" not in heavy and "lsprotocol" not in heavy
