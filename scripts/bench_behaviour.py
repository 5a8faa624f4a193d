"""Differential testing on the public benchmark: every function that PassPilot makes smaller than -Oz.

Takes the same even sample as `passpilot bench data/benchmark --limit N` (cli.benchmark_sample), runs the
engine with bench's defaults, and for each function whose best is smaller than -Oz runs the behaviour
check the CLI runs with `--check-behaviour` (engine.behaviour: the standalone function against opt's output,
then the module with the rewrite spliced in). Prints the number checked, the number not checkable by reason
and the mismatches, with one row per function in the JSON report.

    .venv/bin/python scripts/bench_behaviour.py --limit 150 --out docs/bench/behaviour-n150.json
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lsp_server.engine import defaults  # noqa: E402  (one place for each default)

from lsp_server.cli import benchmark_sample, read_ir  # noqa: E402
from lsp_server.compiler.behaviour import DEFAULT_TRIALS, BehaviourOptions, find_clang  # noqa: E402
from lsp_server.engine import DEFAULT_SOURCES, EngineSettings, assemble  # noqa: E402
from lsp_server.engine.behaviour import RewriteChecker  # noqa: E402


def reason_kind(reason: str) -> str:
    """A not-checked reason without the names and types of one function, to count them together."""
    text = re.sub(r'@(?:"[^"]*"|[\w.$-]+)', "@…", reason)
    text = re.sub(r"unsupported signature \(.*\)$", "unsupported signature (…)", text)
    text = re.sub(r"\b(parameter|of) \d+\b", r"\1 N", text)
    return re.sub(r"\(([^()]*)\) is larger than", "(…) is larger than", text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", type=Path, default=ROOT / "data" / "benchmark")
    parser.add_argument("--limit", type=int, default=150, help="the even sample of `bench --limit` (0: all)")
    parser.add_argument("--budget", type=int, default=defaults.BUDGET)
    parser.add_argument("--sources", default=",".join(DEFAULT_SOURCES))
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    args = parser.parse_args()

    clang = find_clang()
    if clang is None:
        print("clang-22 is not installed: nothing can be checked", file=sys.stderr)
        return 3
    sample, skipped = benchmark_sample(args.directory, args.limit)
    sources = [s for s in args.sources.split(",") if s]
    assembly = assemble(EngineSettings(model_path="" if "model" in sources else "none", use_cache=False))
    optimizer = assembly.optimizer
    rows = []
    started = time.perf_counter()
    texts: dict[Path, str] = {}
    header = {
        "directory": str(args.directory),
        "limit": args.limit,
        "budget": args.budget,
        "sources": sources,
        "trials": args.trials,
        "opt": {"path": optimizer.opt.path, "version": optimizer.opt.version},
        "clang": clang,
        "model": assembly.model_identity,
    }
    try:
        with RewriteChecker(optimizer, BehaviourOptions(trials=args.trials, clang=clang)) as checker:
            for index, (path, function) in enumerate(sample):
                result = optimizer.optimize(function, budget=args.budget, sources=sources)
                if result.best is None or not result.oz.ok or result.best.count >= result.oz.count:
                    continue
                text = texts.setdefault(path, read_ir(path))
                began = time.perf_counter()
                verdict = checker.verdict(text, result)
                seconds = time.perf_counter() - began
                row = {
                    "file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
                    "function": result.name,
                    "original": result.original,
                    "oz": result.oz.count,
                    "best": result.best.count,
                    "passes": result.best.passes,
                    "source": result.best.source,
                    "seconds": round(seconds, 3),
                    **verdict.to_json(),
                }
                rows.append(row)
                if args.out and len(rows) % 10 == 0:  # a long run keeps what it has checked so far
                    write(args.out, {**header, "complete": False, "done": index + 1, "totals": summarize(rows, len(sample), started), "functions": rows})
                print(f"[{index + 1}/{len(sample)}] @{result.name}: {result.oz.count} -> {result.best.count}: {verdict.summary()}", flush=True)
    finally:
        optimizer.close()

    totals = summarize(rows, len(sample), started)
    report = {**header, "complete": True, "done": len(sample), "totals": totals, "functions": rows, "skipped_files": skipped}
    if args.out:
        write(args.out, report)
    statuses = collections.Counter(row["status"] for row in rows)
    reasons = collections.Counter(totals["not_checked_by_reason"])
    diagnoses = totals["blocked_by_diagnosis"]
    print(f"sample {len(sample)} functions; {len(rows)} smaller than -Oz (budget {args.budget}, sources {','.join(sources)})")
    print(f"  same results: {statuses['same']} ({totals['trials']} inputs, {totals['trials_both_failed']} crashed or hung in both, "
          f"{totals['trials_original_failed']} only in the original, {totals['trials_undefined']} explained by -Oz)")
    print(f"  not checked: {statuses['not-checked']}")
    for reason, count in reasons.most_common():
        print(f"    {count:4d}  {reason}")
    print(f"  blocked (mismatches found): {statuses['blocked']}" + "".join(f"; {n} {d}" for d, n in diagnoses.items()))
    print(f"  mismatching rewrites accepted: {totals['accepted_mismatches']}")
    return 0


def write(path: Path, report: dict) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n")


def summarize(rows: list[dict], sample: int, started: float) -> dict:
    """Counts over the per-function rows (the figures the script prints)."""
    statuses = collections.Counter(row["status"] for row in rows)
    reasons = collections.Counter(reason_kind(row["check"]["reason"]) for row in rows if row["status"] == "not-checked")
    diagnoses = collections.Counter(b["diagnosis"] for row in rows for b in row["blocked"])
    accepted = [
        row for row in rows if row["written"] and row["written"]["source"] != "oz" and row["check"]["status"] == "different"
    ]
    checked = [row for row in rows if row["check"]["status"] == "same"]
    return {
        "sample": sample,
        "smaller_than_oz": len(rows),
        "checked_same": statuses["same"],
        "not_checked": statuses["not-checked"],
        "not_checked_by_reason": dict(reasons.most_common()),
        "blocked": statuses["blocked"],
        "blocked_by_diagnosis": dict(diagnoses.most_common()),
        "accepted_mismatches": len(accepted),
        "module_checks_same": sum(1 for row in rows if row["module_check"] and row["module_check"]["status"] == "same"),
        "trials": sum(row["check"]["trials"] for row in checked),
        "trials_both_failed": sum(row["check"]["both_failed"] for row in checked),
        "trials_original_failed": sum(row["check"]["original_failed"] for row in checked),
        "trials_undefined": sum(row["check"]["undefined"] for row in checked),
        "seconds_per_check": {
            "p50": round(statistics.median([r["seconds"] for r in rows]), 3) if rows else 0.0,
            "max": round(max((r["seconds"] for r in rows), default=0.0), 3),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
