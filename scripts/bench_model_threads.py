#!/usr/bin/env python3
"""Model inference per function, idle and beside a CPU-bound process on each core, per thread setting.

    python scripts/bench_model_threads.py [--model models/passpilot.gguf] [--configs auto,1,2,...]
                                          [--functions 20] [--rounds 3] [--samples 4] [--json OUT]

For every configuration, fresh processes load the model, answer one warm-up prompt, then time
`propose(function, samples)` (what the engine asks per function) once on each function. Such a process
runs `--rounds` times on the machine as it is ("idle") and `--rounds` times with one `while True: pass`
process per core beside it (started and stopped here); each round runs every configuration, idle then
loaded, so that a drift of whatever else runs on the machine touches all of them alike. A function's figure is the median of its rounds; the summary line
per configuration gives the sum of the per-function medians and the ratio loaded/idle, and the
per-function rows below it let anyone recount them. The CPU seconds (`time.process_time`, all threads
of the process) show where the time goes: a thread that spins at a barrier burns CPU while it waits.
`--busy-session` says where the busy processes run (see scripts/cpu_load.py).

A configuration is `THREADS[:VAR=VALUE...]`: THREADS is a number or `auto` (the `model.threads` default,
0), and each VAR=VALUE is set in the environment of that process before llama.cpp loads, e.g.
`2:OMP_WAIT_POLICY=passive` (llama.cpp's CPU backend synchronizes its threads with OpenMP barriers; the
libgomp build spins in them, and these variables say for how long).

Functions: an even sample of `--functions` files of data/benchmark/*/*.ll when that folder exists (build it
with `python -m training.corpus all --benchmark`), else every function of examples/example.ll,
tests/lsp/fixtures/small.ll and vscode-extension/e2e/fixtures/example.ll.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lsp_server.engine import defaults  # noqa: E402  (one place for each default)
sys.path.insert(0, str(ROOT / "scripts"))

from cpu_load import autogroup, busy_cores, load_average, usable_cores  # noqa: E402

FIXTURES = ("examples/example.ll", "tests/lsp/fixtures/small.ll", "vscode-extension/e2e/fixtures/example.ll")
DEFAULT_CONFIGS = "auto,2,2:OMP_WAIT_POLICY=passive,2:GOMP_SPINCOUNT=10000,2:GOMP_SPINCOUNT=100000"


def function_files(limit: int) -> list[tuple[str, str]]:
    """(label, function module text) of the functions to time."""
    from lsp_server.engine import standalone_functions

    benchmark = sorted((ROOT / "data" / "benchmark").glob("*/*.ll"))  # one function per file
    if benchmark and limit and limit < len(benchmark):
        benchmark = [benchmark[i * len(benchmark) // limit] for i in range(limit)]  # every package represented
    functions: list[tuple[str, str]] = []
    for path in benchmark or [ROOT / name for name in FIXTURES]:
        try:
            found = standalone_functions(path.read_text())[1]
        except Exception:  # noqa: BLE001 - a module the benchmark cannot use is skipped
            continue
        functions += [(f"{path.relative_to(ROOT)}:{f.name}", f.text) for f in found]
    return functions


def child(args: argparse.Namespace) -> int:
    """Load the model with `--threads`, time every function once, print JSON."""
    from lsp_server.compiler import find_opt, load_vocabulary
    from lsp_server.model import load_proposer

    functions = function_files(args.functions)
    proposer = load_proposer(args.model, threads=args.threads, known_passes=load_vocabulary(find_opt()).names)
    started = time.perf_counter()
    proposer.load()
    load_seconds = time.perf_counter() - started
    proposer.propose(functions[0][1], args.samples)  # warm-up: first-call allocations
    seconds: dict[str, float] = {}
    cpu_seconds: dict[str, float] = {}
    for label, text in functions:
        started, cpu_started = time.perf_counter(), time.process_time()
        proposer.propose(text, args.samples)
        seconds[label] = time.perf_counter() - started
        cpu_seconds[label] = time.process_time() - cpu_started  # every thread of the process, spinning included
    proposer.close()
    print(json.dumps({"threads": proposer.threads, "load_seconds": load_seconds, "seconds": seconds, "cpu_seconds": cpu_seconds}))
    return 0


def run_child(args: argparse.Namespace, config: str) -> dict | None:
    """One timed pass over the functions in a fresh process; None when it ran past `--timeout`."""
    threads, *assignments = config.split(":")
    env = dict(os.environ)
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        env[name] = value
    command = [
        sys.executable, __file__, "--child", "--threads", "0" if threads == "auto" else threads,
        "--model", str(args.model), "--functions", str(args.functions), "--samples", str(args.samples),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=args.timeout)
    except subprocess.TimeoutExpired:  # the collapse this script looks for can take many minutes
        return None
    if result.returncode != 0:
        sys.exit(f"configuration {config} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict | None]) -> dict:
    """Per-function medians over the rounds (a round that was stopped counts as infinitely slow)."""
    done = [run for run in runs if run is not None]
    labels = list(dict.fromkeys(label for run in done for label in run["seconds"]))
    median = {label: statistics.median(run["seconds"][label] if run else float("inf") for run in runs) for label in labels}
    cpu = {label: statistics.median(run["cpu_seconds"][label] if run else float("inf") for run in runs) for label in labels}
    return {
        "cpu_median": cpu,
        "cpu_total": sum(cpu.values()) if labels else float("inf"),
        "threads": done[0]["threads"] if done else None,
        "rounds": runs,
        "timed_out_rounds": sum(run is None for run in runs),
        "median": median,
        "total": sum(median.values()) if labels else float("inf"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "passpilot.gguf")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated (default: {DEFAULT_CONFIGS})")
    parser.add_argument("--functions", type=int, default=20, help="functions sampled from data/benchmark")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the functions, per condition")
    parser.add_argument("--samples", type=int, default=defaults.MODEL_SAMPLES, help="model answers per function (the engine's default)")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    parser.add_argument(
        "--busy-session", choices=("own", "same"), default="own",
        help="start the busy processes in their own session (another program) or in this one (see cpu_load.py)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds before one timed pass is stopped")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    print(
        f"model {args.model}, {usable_cores()} cores, {args.rounds} rounds, {args.samples} samples per function, "
        f"busy processes in {args.busy_session} session (scheduler autogroup {autogroup()})"
    )
    print(f"load average before: {load_average()}")
    report: dict = {"model": str(args.model), "cores": usable_cores(), "busy_session": args.busy_session, "autogroup": autogroup(), "configs": {}}
    runs: dict[str, dict[str, list[dict | None]]] = {config: {"idle": [], "loaded": []} for config in configs}
    hogs: list[int] = []
    for number in range(1, args.rounds + 1):
        # Rounds outermost: a drift of the machine's other load touches every configuration alike.
        for config in configs:
            runs[config]["idle"].append(run_child(args, config))
            with busy_cores(own_session=args.busy_session == "own") as hogs:
                runs[config]["loaded"].append(run_child(args, config))
        print(f"round {number} of {args.rounds} done; load average {load_average()}", flush=True)
    for config in configs:
        idle, loaded = summarize(runs[config]["idle"]), summarize(runs[config]["loaded"])
        ratio = loaded["total"] / idle["total"] if idle["total"] not in (0, float("inf")) else float("nan")
        report["configs"][config] = {"idle": idle, "loaded": loaded, "ratio": ratio}
        stopped = idle["timed_out_rounds"] + loaded["timed_out_rounds"]
        print(
            f"{config:<28} threads {idle['threads'] or loaded['threads']}  idle {idle['total']:7.3f} s  beside {len(hogs)} busy processes "
            f"{loaded['total']:7.3f} s  loaded/idle {ratio:5.2f}  CPU s idle {idle['cpu_total']:.3f} loaded {loaded['cpu_total']:.3f}"
            + (f"  ({stopped} runs stopped after {args.timeout:.0f} s)" if stopped else ""),
            flush=True,
        )
    print("\nper function (median of the rounds, ms), idle / loaded:")
    labels = list(dict.fromkeys(label for entry in report["configs"].values() for c in ("idle", "loaded") for label in entry[c]["median"]))
    width = max(len(label) for label in labels)
    print(f"{'function':<{width}}  " + "  ".join(f"{config[:18]:>18}" for config in configs))
    for label in labels:
        cells = []
        for config in configs:
            entry = report["configs"][config]
            idle_ms, loaded_ms = (1000 * entry[c]["median"].get(label, float("inf")) for c in ("idle", "loaded"))
            cells.append(f"{idle_ms:8.1f}/{loaded_ms:<9.1f}")
        print(f"{label:<{width}}  " + "  ".join(f"{cell:>18}" for cell in cells))
    print(f"load average after: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
