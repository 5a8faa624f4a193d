#!/usr/bin/env python3
"""Candidates per second of the two compiler backends, in the same run on the same machine.

    python scripts/bench_backends.py [--limit 150] [--budget 10] [--sources coreset,search] [--rounds 1]

Runs `passpilot bench data/benchmark --limit N --budget B --sources S --model none --json` once with
`--backend opt` and once with `--backend libllvm` (alternating, `--rounds` times), checks that both give
identical totals, and prints candidates per second for each and their ratio. A candidate is one compiler
run: -Oz plus the budget spent per function (`candidates` in the report); the rate divides it by the
engine's time (`seconds_total`, the sum of per-function times), and the wall-clock rate of the whole
command (process start, imports, reading the benchmark) is printed beside it. The model is left out: its
inference costs the same with either backend and has its own benchmark (scripts/bench_model_threads.py).

The reports of the last round go to docs/bench/backend-{opt,libllvm}-b{B}-n{N}.json. The machine may be
shared: the load average and the busiest other processes are printed before each run.
Build data/benchmark first with `python -m training.corpus all --benchmark`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lsp_server.engine import defaults  # noqa: E402  (one place for each default)
BACKENDS = ("opt", "libllvm")


def machine_load() -> str:
    """The load average and the busiest processes: what else was running while we measured."""
    one, five, fifteen = os.getloadavg()
    busiest = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True).stdout.splitlines()[1:6]
    others = ", ".join(" ".join(line.split()[::-1]) + "%" for line in busiest)
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores; busiest: {others}"


def run_bench(backend: str, args) -> tuple[dict, float]:
    command = [
        sys.executable, "-m", "lsp_server.cli", "bench", str(args.directory), "--limit", str(args.limit),
        "--budget", str(args.budget), "--sources", args.sources, "--model", "none", "--backend", backend, "--json",
    ]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"passpilot bench --backend {backend} failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout), wall


def comparable(report: dict) -> dict:
    """What must not depend on the backend: the totals, and the per-function figures where the report has them."""
    rows = report.get("rows") or report.get("functions") or []
    per_function = [(r.get("file"), r.get("name"), r.get("oz"), r.get("best"), r.get("passes")) for r in rows if isinstance(r, dict)]
    return {"totals": report["totals"], "per_function": per_function}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directory", type=Path, default=Path("data/benchmark"))
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--budget", type=int, default=defaults.BUDGET)
    parser.add_argument("--sources", default="coreset,search")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = parser.parse_args()
    if not (ROOT / args.directory).is_dir():
        sys.exit(f"{args.directory} does not exist; build it with `python -m training.corpus all --benchmark`")

    rates: dict[str, list[tuple[float, float]]] = {backend: [] for backend in BACKENDS}
    reports: dict[str, dict] = {}
    for round_number in range(1, args.rounds + 1):
        for backend in BACKENDS:
            print(f"round {round_number}, --backend {backend}: {machine_load()}", flush=True)
            report, wall = run_bench(backend, args)
            if report["backend"]["name"] != backend:
                sys.exit(f"asked for --backend {backend}, but {report['backend']['name']} ran")
            reports[backend] = report
            engine_rate = report["candidates"] / report["seconds_total"]
            wall_rate = report["candidates"] / wall
            rates[backend].append((engine_rate, wall_rate))
            totals = report["totals"]
            print(
                f"  {backend:<8} {report['candidates']} candidates in {report['seconds_total']:.1f} s: {engine_rate:.1f}/s "
                f"(wall {wall:.1f} s: {wall_rate:.1f}/s); -Oz {totals['oz']}, best {totals['best']}, "
                f"{totals['improved_functions']} of {totals['functions']} improved",
                flush=True,
            )
        if comparable(reports["opt"]) != comparable(reports["libllvm"]):
            print("  TOTALS DIFFER:", json.dumps({b: reports[b]["totals"] for b in BACKENDS}), flush=True)
            return 1
        print("  identical totals" + (" and per-function figures" if comparable(reports["opt"])["per_function"] else ""), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    for backend in BACKENDS:
        path = args.out / f"backend-{backend}-b{args.budget}-n{args.limit}.json"
        path.write_text(json.dumps(reports[backend], indent=2) + "\n")
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    best = {backend: max(rate for rate, _ in rates[backend]) for backend in BACKENDS}
    best_wall = {backend: max(rate for _, rate in rates[backend]) for backend in BACKENDS}
    print(
        f"candidates per second (best of {args.rounds}): opt {best['opt']:.1f}, libllvm {best['libllvm']:.1f}, "
        f"ratio {best['libllvm'] / best['opt']:.1f}x; wall clock incl. start-up: opt {best_wall['opt']:.1f}, "
        f"libllvm {best_wall['libllvm']:.1f}, ratio {best_wall['libllvm'] / best_wall['opt']:.1f}x"
    )
    print(f"after: {machine_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
