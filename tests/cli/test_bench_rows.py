"""`passpilot bench --json` writes one auditable row per function; two rows are recounted with the real opt."""

import json
import subprocess
import sys
from pathlib import Path

from lsp_server.engine import standalone_functions
from lsp_server.ir import count_instructions

ROOT = Path(__file__).resolve().parents[2]
ROW_KEYS = {"file", "name", "original", "oz", "best", "passes", "source", "opt_calls", "seconds"}


def opt_count(opt_path: str, passes: str, module: Path) -> int:
    """Instructions after `opt -passes=<passes>` (a real opt process, argument list, no shell)."""
    run = subprocess.run([opt_path, f"-passes={passes}", "-S", "-o", "-", str(module)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return count_instructions(run.stdout)


def test_bench_rows_recount_with_opt(opt_tool, tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "pkg").mkdir(parents=True)
    (corpus / "pkg" / "example.ll").write_text((ROOT / "examples" / "example.ll").read_text())
    (corpus / "small.ll").write_text((ROOT / "tests" / "lsp" / "fixtures" / "small.ll").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "bench", str(corpus), "--budget", "3", "--sources", "coreset,search",
         "--opt", opt_tool.path, "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = report["functions"]
    assert len(rows) == report["totals"]["functions"] == 7 + 4
    for row in rows:
        assert ROW_KEYS <= set(row), row
        assert row["seconds"] > 0 and 0 <= row["opt_calls"] <= 3
    assert {row["file"] for row in rows} == {"pkg/example.ll", "small.ll"}
    for key in ("original", "oz", "best"):
        assert report["totals"][key] == sum(row[key] for row in rows), key

    improved = [row for row in rows if row["best"] < row["oz"]]
    assert improved, "the coreset beats -Oz on example.ll's weighted_sum"
    for row in (improved[0], next(row for row in rows if row is not improved[0] and row["file"] != improved[0]["file"])):
        function = next(f for f in standalone_functions((corpus / row["file"]).read_text())[1] if f.name == row["name"])
        module = tmp_path / f"{row['name']}.ll"
        module.write_text(function.text)
        assert count_instructions(function.text) == row["original"], row
        assert opt_count(opt_tool.path, "default<Oz>", module) == row["oz"], row
        assert opt_count(opt_tool.path, row["passes"], module) == row["best"], row
