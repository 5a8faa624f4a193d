#!/usr/bin/env python3
"""Long fuzz campaign through the CLI: mutated real IR into `passpilot optimize -o`.

    .venv/bin/python scripts/fuzz_cli.py --inputs 2000 [--seed 0] [--json docs/bench/fuzz-cli.json]

Prints inputs tried, results, located errors (exit 2), and the defects: tracebacks, hangs, other exit codes
and outputs that `opt -passes=verify` rejects. Each defect is printed with its seed, so
`tests/fuzz/mutations.mutate(seed, corpus[seed % len(corpus)])` regenerates the input.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.harness import run_cli  # noqa: E402
from tests.fuzz.mutations import mutate, seed_corpus  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds before an input counts as a hang")
    parser.add_argument("--benchmark-files", type=int, default=40, help="public-benchmark files in the seed corpus")
    parser.add_argument("--json", type=Path, help="write the figures and every defect here")
    args = parser.parse_args()
    corpus = seed_corpus(limit_benchmark=args.benchmark_files)
    statuses: collections.Counter[str] = collections.Counter()
    mutations_used: collections.Counter[str] = collections.Counter()
    defects, seconds = [], []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.inputs):
            seed = args.seed + index
            name, data = corpus[seed % len(corpus)]
            fuzzed, mutations = mutate(seed, data)
            mutations_used.update(mutations)
            outcome = run_cli(fuzzed, Path(folder), time_limit=args.time_limit)
            statuses[outcome.status] += 1
            seconds.append(outcome.seconds)
            if outcome.defect:
                defects.append({"seed": seed, "file": name, "mutations": mutations, "status": outcome.status, "detail": outcome.detail})
                print(f"DEFECT seed {seed} {name} {'+'.join(mutations)}: {outcome.status}\n{outcome.detail}", file=sys.stderr)
            if (index + 1) % 100 == 0:
                print(f"  {index + 1}/{args.inputs} inputs, {dict(statuses)}", file=sys.stderr)
    report = {
        "inputs": args.inputs,
        "seed": args.seed,
        "seed_corpus_files": len(corpus),
        "statuses": dict(statuses),
        "tracebacks": statuses["traceback"],
        "hangs": statuses["hang"],
        "unexpected_exits": statuses["unexpected-exit"],
        "unverified_outputs": statuses["unverified-output"],
        "mutations": dict(mutations_used),
        "seconds": {"total": round(time.monotonic() - started, 1), "p50": round(statistics.median(seconds), 3),
                    "max": round(max(seconds), 3)},
        "machine": platform.platform(),
        "defects": defects,
    }
    print(f"fuzz_cli: {args.inputs} inputs from {len(corpus)} seed files (seed {args.seed})")
    print(f"  results (exit 0, output verified): {statuses['ok']}")
    print(f"  located errors (exit 2): {statuses['bad-input']}")
    print(f"  tracebacks: {statuses['traceback']}, hangs (> {args.time_limit:g} s): {statuses['hang']}, "
          f"other exits: {statuses['unexpected-exit']}, outputs rejected by opt: {statuses['unverified-output']}")
    print(f"  time per input: p50 {report['seconds']['p50']} s, max {report['seconds']['max']} s, total {report['seconds']['total']} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
