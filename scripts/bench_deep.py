"""Deep search against a blind autotuner, on the same functions in the same run.

For every function of the benchmark sample (`passpilot bench DIR --limit N` takes the same one) it runs
(a) the deep search with `--time T` for each T, and (b) a blind search: 1,000 valid random lists
(RandomSearchSource), then 300 hill-climbing steps from its best (one pass inserted, dropped or replaced).
It prints the gain under -Oz of each (sum of (oz - best) over sum of oz), calls and seconds per function,
and writes per-function rows to docs/bench/deep-n{N}.json and a plot to docs/bench/deep-gain-vs-time.png.

    .venv/bin/python scripts/bench_deep.py --limit 150                  # 1, 3, 10 and 30 s per function
    .venv/bin/python scripts/bench_deep.py --limit 20 --times 1,3       # a quick look
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lsp_server.engine import defaults  # noqa: E402  (one place for each default)

from lsp_server.cli import benchmark_sample  # noqa: E402
from lsp_server.compiler import PassListError  # noqa: E402
from lsp_server.engine import OZ, Candidate, EngineSettings, RandomSearchSource, assemble  # noqa: E402
from lsp_server.engine.deep import DeepOptions, DeepSearch, render, top_level_elements  # noqa: E402
from lsp_server.engine.optimizer import Measurement, Optimizer  # noqa: E402
from lsp_server.engine.sources import search_space  # noqa: E402
from lsp_server.ir import StandaloneFunction, count_instructions  # noqa: E402


def ranking(m: Measurement) -> tuple:
    return (m.count, m.source != "oz", m.length)


def blind_search(
    optimizer: Optimizer, pool: ThreadPoolExecutor, function: StandaloneFunction, lists: int, steps: int, seed: int
) -> dict:
    """Random lists, then hill climbing from the best: each round tries `jobs` single-pass mutations of the
    current list and moves to the smallest result that is no larger (sideways moves cross plateaus)."""
    started = time.perf_counter()
    oz = optimizer.measure(function, Candidate(OZ, "oz"))
    measured = [oz]
    seen = {OZ}
    planned: list[Candidate] = []
    source = RandomSearchSource(optimizer.vocabulary.names, seed=seed)
    for candidate in source.candidates(function, lists * 4):
        if len(planned) == lists:
            break
        try:
            normalized = optimizer.vocabulary.check(candidate.passes)
        except PassListError:
            continue
        if normalized not in seen:
            seen.add(normalized)
            planned.append(candidate)
    measured += pool.map(lambda c: optimizer.measure(function, c), planned)
    calls = len(planned)
    valid = [m for m in measured if m.ok]
    current = min(valid, key=ranking) if valid else None
    space = search_space(optimizer.vocabulary.names)
    rng = random.Random(seed)
    tried = 0
    while current is not None and tried < steps:
        genome = top_level_elements(current.passes)
        batch = []
        for _ in range(100 * optimizer.jobs):
            if len(batch) == min(optimizer.jobs, steps - tried):
                break
            child = _single_pass_mutation(rng, genome, space)
            try:
                normalized = optimizer.vocabulary.check(render(child))
            except PassListError:
                continue
            if normalized not in seen:
                seen.add(normalized)
                batch.append(Candidate(render(child), "climb"))
        if not batch:
            break
        results = list(pool.map(lambda c: optimizer.measure(function, c), batch))
        tried += len(batch)
        measured += results
        ok = [m for m in results if m.ok]
        if ok:
            step = min(ok, key=lambda m: m.count)
            if step.count <= current.count:
                current = step
    valid = [m for m in measured if m.ok]
    best = min(valid, key=ranking) if valid else None
    return {
        "oz": oz.count,
        "best": best.count if best else None,
        "passes": best.passes if best else None,
        "source": best.source if best else None,
        "calls": calls + tried,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _single_pass_mutation(rng: random.Random, genome: tuple[str, ...], space: list[str]) -> tuple[str, ...]:
    i = rng.randrange(len(genome) + 1)
    move = rng.choice(("insert", "drop", "replace")) if len(genome) > 1 else "insert"
    if move == "insert":
        return genome[:i] + (rng.choice(space),) + genome[i:]
    i = min(i, len(genome) - 1)
    if move == "drop":
        return genome[:i] + genome[i + 1 :]
    return genome[:i] + (rng.choice(space),) + genome[i + 1 :]


def gain(rows: list[dict], key: str) -> float:
    measured = [r for r in rows if r["oz"] is not None and r[key]["best"] is not None]
    oz = sum(r["oz"] for r in measured)
    return 100.0 * sum(r["oz"] - r[key]["best"] for r in measured) / oz if oz else 0.0


def summary(rows: list[dict], key: str) -> dict:
    n = len(rows) or 1
    return {
        "gain_vs_oz_percent": round(gain(rows, key), 3),
        "improved_functions": sum(1 for r in rows if r["oz"] is not None and r[key]["best"] is not None and r[key]["best"] < r["oz"]),
        "calls_per_function": round(sum(r[key]["calls"] for r in rows) / n, 1),
        "seconds_per_function": round(sum(r[key]["seconds"] for r in rows) / n, 3),
    }


def plot(report: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("matplotlib is not installed (pip install '.[bench]'): no plot", file=sys.stderr)
        return False
    configs = report["configs"]
    deep = [(c["seconds_per_function"], c["gain_vs_oz_percent"], name) for name, c in configs.items() if name.startswith("deep")]
    blind = configs["blind"]
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    axes.plot([d[0] for d in deep], [d[1] for d in deep], "o-", label="deep search (--time T)")
    for x, y, name in deep:
        label = f"--time {name.removeprefix('deep-').removesuffix('s')}"
        axes.annotate(label, (x, y), textcoords="offset points", xytext=(5, -12), fontsize=8)
    axes.plot([blind["seconds_per_function"]], [blind["gain_vs_oz_percent"]], "s", color="grey",
              label=f"blind: {report['blind_lists']} random + {report['climb_steps']} hill-climbing")
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xticks(sorted({round(x, 1) for x, _, _ in deep}))
    axes.set_xlabel("seconds per function actually spent (log)")
    axes.set_ylabel("gain under -Oz (%)")
    load = report["load_average_at_start"][0]
    title = f"{report['functions']} benchmark functions, {report['jobs']} jobs, {report['backend']['name']}, load average {load:g}"
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directory", type=Path, default=ROOT / "data" / "benchmark")
    parser.add_argument("--limit", type=int, default=150, help="an even sample of N functions (0: all)")
    parser.add_argument("--times", default="1,3,10,30", help="seconds per function for the deep search, comma-separated")
    parser.add_argument("--seed", type=int, default=DeepOptions.seed)
    parser.add_argument("--blind-lists", type=int, default=1000)
    parser.add_argument("--climb-steps", type=int, default=300)
    parser.add_argument("--model", default="", help="GGUF model, or 'none' (default: the shipped model)")
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--backend", default=defaults.BACKEND)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--plot-only", type=Path, metavar="JSON", help="draw the plot of an earlier run's JSON and stop")
    args = parser.parse_args()
    if args.plot_only:
        return 0 if plot(json.loads(args.plot_only.read_text()), args.out / "deep-gain-vs-time.png") else 1
    times = [float(t) for t in args.times.split(",") if t.strip()]

    sample, skipped = benchmark_sample(args.directory, args.limit)
    assembly = assemble(EngineSettings(model_path=args.model, use_cache=False, jobs=args.jobs, backend=args.backend))
    for warning in assembly.warnings:
        print(f"bench_deep: {warning}", file=sys.stderr)
    optimizer = assembly.optimizer
    load = os.getloadavg()
    rows = []
    try:
        with ThreadPoolExecutor(optimizer.jobs) as pool:
            searches = {t: DeepSearch(optimizer, DeepOptions(seconds=t, seed=args.seed)) for t in times}
            for number, (path, function) in enumerate(sample, 1):
                row = {
                    "file": str(path.relative_to(args.directory)),
                    "name": function.name,
                    "original": count_instructions(function.text),
                    "oz": None,
                }
                for t, search in searches.items():
                    result = search.search(function)
                    row["oz"] = result.oz.count
                    row[f"deep-{t:g}s"] = {
                        "best": result.best.count if result.best else None,
                        "passes": result.best.passes if result.best else None,
                        "source": result.winner_source,
                        "calls": result.tried,
                        "seconds": round(result.seconds, 3),
                        "stopped": result.stopped,
                        "improvements": result.search_figures()["improvements"],
                    }
                row["blind"] = blind_search(optimizer, pool, function, args.blind_lists, args.climb_steps, args.seed)
                rows.append(row)
                figures = "  ".join(f"{k} {row[k]['best']}" for k in row if k.startswith(("deep", "blind")))
                print(f"[{number}/{len(sample)}] {row['file']} @{row['name']}: -Oz {row['oz']}  {figures}", file=sys.stderr)
            for search in searches.values():
                search.close()
    finally:
        optimizer.close()
    keys = [f"deep-{t:g}s" for t in times] + ["blind"]
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "directory": str(args.directory),
        "functions": len(rows),
        "jobs": optimizer.jobs,
        "backend": optimizer.backend.identity.report(),
        "model": assembly.model_identity,
        "seed": args.seed,
        "blind_lists": args.blind_lists,
        "climb_steps": args.climb_steps,
        "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "configs": {key: summary(rows, key) for key in keys},
        "rows": rows,
        "skipped_files": skipped,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"deep-n{len(rows)}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{len(rows)} functions, {optimizer.jobs} jobs, backend {optimizer.backend.identity.name}, model {assembly.model_identity or 'none'}, "
          f"load average {report['load_average_at_start']} -> {report['load_average_at_end']}")
    print(f"{'configuration':<14} {'gain vs -Oz':>11} {'improved':>9} {'calls/fn':>9} {'s/fn':>7}")
    for key in keys:
        c = report["configs"][key]
        print(f"{key:<14} {c['gain_vs_oz_percent']:>10.2f}% {c['improved_functions']:>9} {c['calls_per_function']:>9} {c['seconds_per_function']:>7.3f}")
    print(f"rows: {out}")
    if plot(report, args.out / "deep-gain-vs-time.png"):
        print(f"plot: {args.out / 'deep-gain-vs-time.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
