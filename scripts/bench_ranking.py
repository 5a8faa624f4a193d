"""Gain against budget on the public benchmark: the model's ranked order, the fixed coreset order, random search.

    .venv/bin/python scripts/bench_ranking.py [--limit N] [--budgets 1,3,10,30] [--model PATH]

Every figure is one `passpilot bench data/benchmark --limit N --budget B --sources S --json` run, in one
session on one machine (the result cache off, so times are real). Configurations:

* `model`: the model alone, with the -Oz backup (-Oz is always measured);
* `coreset`: the fixed order of `models/coreset.txt`;
* `search`: valid random pipelines (the `search` source);
* `coreset+refine`: the coreset's order, then learned edits of its best list (`refine`, beyond 6 lists):
  what the default sources would be without the model;
* `default`: the default sources `model,coreset,refine,search`.

Writes `docs/bench/ranking/<config>-b<B>-n<N>.json` (per-function rows inside), `docs/bench/ranking/summary.json`,
the plot `docs/images/ranking-gain.png`, and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"model": "model", "coreset": "coreset", "search": "search", "coreset+refine": "coreset,refine",
           "default": "model,coreset,refine,search"}


def run(passpilot: str, limit: int, budget: int, sources: str, model: str, out: Path) -> dict:
    command = [passpilot, "bench", str(ROOT / "data" / "benchmark"), "--limit", str(limit), "--budget", str(budget),
               "--sources", sources, "--json"]
    if model:
        command += ["--model", model]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
    out.write_text(result.stdout)
    return json.loads(result.stdout)


def plot(path: Path, budgets: list[int], table: dict[str, dict[int, float]], limit: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    styles = {"model": ("model-ranked order", "#d62728", "o"), "coreset": ("fixed coreset order", "#1f77b4", "s"),
              "search": ("random search", "#7f7f7f", "^"), "coreset+refine": ("coreset, then edits of its best (refine)", "#9467bd", "v"),
              "default": ("default sources (model, coreset, refine, search)", "#2ca02c", "D")}
    for name in [c for c in styles if c in table]:
        gains = table[name]
        label, color, marker = styles[name]
        xs = [b for b in budgets if b in gains]
        axes.plot(xs, [gains[b] for b in xs], marker=marker, color=color, label=label)
    axes.set_xscale("log")
    axes.set_xticks(budgets)
    axes.set_xticklabels([str(b) for b in budgets])
    axes.set_xlabel("budget (compilations beyond -Oz)")
    axes.set_ylabel("instructions under -Oz (%)")
    axes.set_title(f"Public benchmark ({limit or 'all'} functions): gain against budget")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="an even sample of N benchmark functions (0: all 1,443)")
    parser.add_argument("--budgets", default="1,3,10,30")
    parser.add_argument("--model", default="", help="GGUF to benchmark (default: the shipped model)")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "ranking")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "images" / "ranking-gain.png")
    parser.add_argument("--passpilot", default=str(ROOT / ".venv" / "bin" / "passpilot"))
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    table: dict[str, dict[int, float]] = {}
    rows = []
    summary_path = args.out / "summary.json"
    configs = args.configs.split(",")
    if summary_path.exists():  # rows of configurations not rerun now are kept (same --limit only)
        previous = json.loads(summary_path.read_text())
        if previous.get("limit") == args.limit:
            rows = [r for r in previous["rows"] if r["config"] not in configs]
            for r in rows:
                table.setdefault(r["config"], {})[r["budget"]] = r["gain_vs_oz_percent"]
    for name in configs:
        for budget in budgets:
            report = run(args.passpilot, args.limit, budget, CONFIGS[name], args.model, args.out / f"{name}-b{budget}-n{args.limit or 'all'}.json")
            totals, seconds = report["totals"], report["seconds_per_function"]
            table.setdefault(name, {})[budget] = totals["gain_vs_oz_percent"]
            rows.append({"config": name, "sources": CONFIGS[name], "budget": budget, "date": time.strftime("%Y-%m-%d %H:%M"), "gain_vs_oz_percent": totals["gain_vs_oz_percent"],
                         "improved": totals["improved_functions"], "functions": totals["functions"], "oz": totals["oz"], "best": totals["best"],
                         "p50_s": seconds["p50"], "p95_s": seconds["p95"], "model": report.get("model")})
            print(f"{name:>8} budget {budget:>3}: {totals['gain_vs_oz_percent']:6.2f}% under -Oz, {totals['improved_functions']}/{totals['functions']} "
                  f"improved, p50 {seconds['p50']:.3f} s", flush=True)
    summary_path.write_text(json.dumps({"limit": args.limit, "budgets": budgets, "rows": rows}, indent=1) + "\n")
    plot(args.plot, budgets, table, args.limit)
    print()
    print("| configuration | " + " | ".join(f"budget {b}" for b in budgets) + " |")
    print("| --- | " + " | ".join("---:" for _ in budgets) + " |")
    for name in [c for c in CONFIGS if c in table]:
        gains = table[name]
        print(f"| {name} ({CONFIGS[name]}) | " + " | ".join(f"{gains[b]:.2f}%" if b in gains else "" for b in budgets) + " |")
    print(f"\nplot: {args.plot}; reports: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
