"""`--time`, `--calls` and `--seed`: the deep search through the CLI, as a real process with real opt."""

import json
import subprocess
import sys
from pathlib import Path

from lsp_server.compiler import run_opt
from lsp_server.engine import standalone_functions
from lsp_server.ir import count_instructions

ROOT = Path(__file__).resolve().parents[2]


def passpilot(*args):
    return subprocess.run([sys.executable, "-m", "lsp_server.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_optimize_with_time_and_calls_is_reproducible_and_opt_confirms_it(example_text, opt_tool, tmp_path):
    reports = []
    for run in range(2):
        out = tmp_path / f"out{run}.ll"
        result = passpilot(
            "optimize", "examples/example.ll", "--time", "60", "--calls", "30", "--seed", "5",
            "--sources", "coreset", "--no-cache", "--json", "-o", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    report = reports[0]
    assert report["deep"] == {"seconds": 60.0, "calls": 30, "seed": 5}
    functions = {f.name: f for f in standalone_functions(example_text)[1]}
    for row in report["functions"]:
        search = row["search"]
        assert search["tried"] == row["opt_calls"] == 30 and search["stopped"] == "calls" and search["seed"] == 5
        assert search["winner_source"] == row["source"] and search["improvements"][-1]["count"] == row["best"]
        assert row["best"] <= row["oz"] and row["verified"] is True
        reproduced = run_opt(opt_tool, row["passes"], functions[row["name"]].text)
        assert count_instructions(reproduced.output) == row["best"]
    same = lambda r: [(row["name"], row["best"], row["passes"]) for row in r["functions"]]  # noqa: E731
    assert same(reports[0]) == same(reports[1])
    assert (tmp_path / "out0.ll").read_text() == (tmp_path / "out1.ll").read_text()
    assert count_instructions((tmp_path / "out0.ll").read_text()) == report["totals"]["best"]


def test_optimize_table_reports_the_search_under_a_time_bound():
    result = passpilot("optimize", "examples/example.ll", "--function", "grade", "--time", "0.5", "--sources", "coreset", "--no-cache")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].split()[0] == "grade"
    assert any(line.startswith("deep search: ") and line.endswith(" s") for line in lines), result.stdout


def test_bench_rows_gain_the_search_figures(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "example.ll").write_text((ROOT / "examples" / "example.ll").read_text())
    result = passpilot("bench", str(tmp_path), "--limit", "2", "--time", "5", "--calls", "12", "--sources", "coreset", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["deep"]["calls"] == 12 and len(report["functions"]) == 2
    for row in report["functions"]:
        assert row["search"]["tried"] == 12 and row["file"] == "a/example.ll" and row["best"] <= row["oz"]


def test_deep_options_need_time_and_sane_values():
    calls_alone = passpilot("optimize", "examples/example.ll", "--calls", "10")
    assert calls_alone.returncode == 2 and "--calls and --seed go with --time" in calls_alone.stderr
    zero = passpilot("optimize", "examples/example.ll", "--time", "0")
    assert zero.returncode == 2 and "--time" in zero.stderr and "Traceback" not in zero.stderr
    words = passpilot("bench", "examples", "--time", "soon")
    assert words.returncode == 2 and "Traceback" not in words.stderr
