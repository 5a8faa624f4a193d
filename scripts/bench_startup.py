#!/usr/bin/env python3
"""Start-up of `passpilot optimize` on a one-function file, process start included, idle and under load.

    python scripts/bench_startup.py [--runs 20] [--phase-runs 5] [--json OUT] [-- EXTRA OPTIONS]

Writes a one-function module (31 instructions), then runs

    passpilot optimize F.ll --no-cache [EXTRA OPTIONS]

(the console script of this interpreter's environment; default settings otherwise: the shipped model,
budget 10, sources model,coreset,search, the automatic compiler backend) `--runs` times on the machine as
it is ("idle") and `--runs` times with one `while True: pass` process per core beside it (started and
stopped here; `--busy-session` as in scripts/cpu_load.py), alternately, and prints p50/p95 of the wall
time of each. `--no-cache` keeps the result cache out: without it, every candidate of a second run would
be a cache hit and no compiler would run. The cache of `opt`'s version and pass listing is left on (it is
keyed by the `opt` binary and is what a user's second run gets); one warm-up run, not counted, fills it.
The package's bytecode is compiled first (`compileall`), as an install leaves it.

Then `--phase-runs` more runs per condition go through the same CLI code (`lsp_server.cli.main`) in a child
that times each phase: interpreter start, imports, finding `opt`, the pass vocabulary, starting the
compiler backend, the model (import of llama_cpp, loading the weights, inference), the candidates'
compiler runs, the input check and write-back, shutdown and the interpreter's exit. Each phase's time
is exclusive of the phases it calls; the table gives the median over the phase runs. Last, the pass
vocabulary alone is timed in-process without and with its disk cache.
"""

from __future__ import annotations

import time

PROCESS_STARTED = time.monotonic()  # before any import: the phase child's "imports" start here

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

# A 31-instruction function as clang -O0 -Xclang -disable-O0-optnone writes it: a loop summing a[i]*k.
ONE_FUNCTION = """\
define dso_local i32 @scaled_sum(ptr noundef %a, i32 noundef %n, i32 noundef %k) {
entry:
  %a.addr = alloca ptr, align 8
  %n.addr = alloca i32, align 4
  %k.addr = alloca i32, align 4
  %sum = alloca i32, align 4
  %i = alloca i32, align 4
  store ptr %a, ptr %a.addr, align 8
  store i32 %n, ptr %n.addr, align 4
  store i32 %k, ptr %k.addr, align 4
  store i32 0, ptr %sum, align 4
  store i32 0, ptr %i, align 4
  br label %cond

cond:
  %0 = load i32, ptr %i, align 4
  %1 = load i32, ptr %n.addr, align 4
  %cmp = icmp slt i32 %0, %1
  br i1 %cmp, label %body, label %end

body:
  %2 = load ptr, ptr %a.addr, align 8
  %3 = load i32, ptr %i, align 4
  %idx = sext i32 %3 to i64
  %p = getelementptr inbounds i32, ptr %2, i64 %idx
  %4 = load i32, ptr %p, align 4
  %5 = load i32, ptr %k.addr, align 4
  %mul = mul nsw i32 %4, %5
  %6 = load i32, ptr %sum, align 4
  %add = add nsw i32 %6, %mul
  store i32 %add, ptr %sum, align 4
  %7 = load i32, ptr %i, align 4
  %inc = add nsw i32 %7, 1
  store i32 %inc, ptr %i, align 4
  br label %cond

end:
  %8 = load i32, ptr %sum, align 4
  ret i32 %8
}
"""

PHASES = (
    "interpreter start",
    "imports",
    "read + split input (llvmlite)",
    "find opt",
    "pass vocabulary",
    "compiler backend start",
    "model: open file",
    "model: import llama_cpp",
    "model: load weights",
    "model: inference",
    "input check (opt)",
    "candidates (compiler runs)",
    "write back + verify",
    "shutdown",
    "interpreter exit",
    "other",
)


def passpilot_command() -> list[str]:
    script = Path(sys.executable).parent / "passpilot"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "lsp_server.cli"]


def percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(percent / 100 * (len(ordered) - 1))))]


def timed_runs(command: list[str], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds.append(time.monotonic() - started)
        if result.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return seconds


# -- the phase child -------------------------------------------------------------------------------------


class PhaseClock:
    """Exclusive time per phase: a wrapped call's time minus the wrapped calls it makes (per thread)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.local = threading.local()

    def wrap(self, owner, attribute: str, phase: str) -> None:
        original = getattr(owner, attribute)
        clock = self

        def timed(*args, **kwargs):
            stack = clock.local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            started = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.monotonic() - started
                nested = stack.pop()
                clock.totals[phase] = clock.totals.get(phase, 0.0) + elapsed - nested
                if stack:
                    stack[-1] += elapsed

        setattr(owner, attribute, timed)


def phase_child(file: str, extra: list[str]) -> int:
    started = PROCESS_STARTED
    from lsp_server import cli
    from lsp_server.engine import factory
    from lsp_server.engine.optimizer import Optimizer
    from lsp_server.model import runtime

    imported = time.monotonic()
    clock = PhaseClock()
    clock.wrap(cli, "standalone_functions", "read + split input (llvmlite)")
    clock.wrap(factory, "find_opt", "find opt")
    clock.wrap(factory, "load_vocabulary", "pass vocabulary")
    if hasattr(factory, "open_backend"):
        clock.wrap(factory, "open_backend", "compiler backend start")
    clock.wrap(factory, "load_model_source", "model: open file")
    clock.wrap(runtime, "_import_llama_cpp", "model: import llama_cpp")
    clock.wrap(runtime.LlamaProposer, "_load", "model: load weights")
    clock.wrap(runtime.LlamaProposer, "propose", "model: inference")
    try:
        from lsp_server.model import ranking

        clock.wrap(ranking.RankingProposer, "rank", "model: inference")
    except (ImportError, AttributeError):
        pass
    if hasattr(cli, "_check_with_compiler"):
        clock.wrap(cli, "_check_with_compiler", "input check (opt)")
    clock.wrap(Optimizer, "optimize_all", "candidates (compiler runs)")
    clock.wrap(cli, "write_back", "write back + verify")
    clock.wrap(Optimizer, "close", "shutdown")
    with open(os.devnull, "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            code = cli.main(["optimize", file, "--no-cache", *extra])
        finally:
            sys.stdout = stdout
    finished = time.monotonic()
    print(json.dumps({"started": started, "imports": imported - started, "finished": finished, "phases": clock.totals, "exit": code}))
    return 0


def phase_runs(file: str, extra: list[str], runs: int) -> list[dict[str, float]]:
    rows = []
    for _ in range(runs):
        spawned = time.monotonic()
        result = subprocess.run(
            [sys.executable, __file__, "--phase-child", file, "--", *extra], capture_output=True, text=True, check=False, cwd=ROOT
        )
        ended = time.monotonic()
        if result.returncode != 0:
            sys.exit(f"phase run failed:\n{result.stderr}")
        child = json.loads(result.stdout.strip().splitlines()[-1])
        row = {phase: 0.0 for phase in PHASES}
        row["interpreter start"] = child["started"] - spawned
        row["imports"] = child["imports"]
        row["interpreter exit"] = ended - child["finished"]
        for phase, seconds in child["phases"].items():
            row[phase] += seconds
        row["total"] = ended - spawned
        row["other"] = row["total"] - sum(row[phase] for phase in PHASES if phase != "other")
        rows.append(row)
    return rows


def vocabulary_times(runs: int) -> dict[str, float]:
    """Median seconds of the pass vocabulary without its disk cache (`opt --print-passes` and parsing) and
    with it (reading and parsing the stored listing), in this process."""
    from lsp_server.compiler import find_opt
    from lsp_server.compiler.passes import read_vocabulary

    opt = find_opt()
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="passpilot-vocabulary-") as folder:
        for number in range(runs):
            cache = Path(folder) / str(number)
            started = time.monotonic()
            read_vocabulary(opt.path, opt.version, cache)
            cold.append(time.monotonic() - started)
            started = time.monotonic()
            read_vocabulary(opt.path, opt.version, cache)
            warm.append(time.monotonic() - started)
    return {"without cache": statistics.median(cold), "with cache": statistics.median(warm)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per condition")
    parser.add_argument("--phase-runs", type=int, default=5, help="instrumented runs per condition for the breakdown")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    parser.add_argument(
        "--busy-session", choices=("own", "same"), default="own",
        help="start the busy processes in their own session (another program) or in this one (see cpu_load.py)",
    )
    parser.add_argument("--phase-child", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase_child:
        return phase_child(args.phase_child, extra)
    from cpu_load import autogroup, busy_cores, load_average, usable_cores  # the parent's only: it imports lsp_server

    with tempfile.TemporaryDirectory(prefix="passpilot-startup-") as folder:
        file = str(Path(folder) / "one.ll")
        Path(file).write_text(ONE_FUNCTION)
        command = [*passpilot_command(), "optimize", file, "--no-cache", *extra]
        print(f"command: {' '.join(command)}")
        print(
            f"{usable_cores()} cores; busy processes in {args.busy_session} session (scheduler autogroup {autogroup()}); "
            f"load average before: {load_average()}"
        )
        # As `pip install` leaves it: compiled bytecode (with PYTHONDONTWRITEBYTECODE set, an editable
        # install would otherwise compile every module of lsp_server again in each run, about 0.3 s).
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "lsp_server")], check=True)
        timed_runs(command, 1)  # warm-up: fills the compiler-facts cache and the OS file cache
        report: dict = {"command": command, "cores": usable_cores(), "busy_session": args.busy_session, "autogroup": autogroup(), "conditions": {}}
        own_session = args.busy_session == "own"
        seconds: dict[str, list[float]] = {"idle": [], "loaded": []}
        phases: dict[str, list[dict[str, float]]] = {"idle": [], "loaded": []}
        # Idle and loaded runs alternate, so that a drift of the machine's other load touches both alike.
        for _ in range(args.runs):
            seconds["idle"] += timed_runs(command, 1)
            with busy_cores(own_session=own_session):
                seconds["loaded"] += timed_runs(command, 1)
        for _ in range(args.phase_runs):
            phases["idle"] += phase_runs(file, extra, 1)
            with busy_cores(own_session=own_session):
                phases["loaded"] += phase_runs(file, extra, 1)
        vocabulary = {"idle": vocabulary_times(args.phase_runs)}
        with busy_cores(own_session=own_session):
            vocabulary["loaded"] = vocabulary_times(args.phase_runs)
        for condition in ("idle", "loaded"):
            runs = seconds[condition]
            report["conditions"][condition] = {"seconds": runs, "phases": phases[condition], "vocabulary": vocabulary[condition]}
            print(
                f"{condition:>6}: p50 {percentile(runs, 50):.3f} s  p95 {percentile(runs, 95):.3f} s  "
                f"min {min(runs):.3f} s  max {max(runs):.3f} s  ({args.runs} runs)",
                flush=True,
            )
        print(f"load average after: {load_average()}")
        idle, loaded = (report["conditions"][c]["seconds"] for c in ("idle", "loaded"))
        print(f"loaded/idle p50: {percentile(loaded, 50) / percentile(idle, 50):.2f}")
        print(f"\nphases (median of {args.phase_runs} instrumented runs, seconds):")
        print(f"{'phase':<28}  {'idle':>7}  {'loaded':>7}")
        for phase in (*PHASES, "total"):
            cells = [statistics.median(row[phase] for row in report["conditions"][c]["phases"]) for c in ("idle", "loaded")]
            print(f"{phase:<28}  {cells[0]:7.3f}  {cells[1]:7.3f}")
        for key in ("without cache", "with cache"):
            cells = [report["conditions"][c]["vocabulary"][key] for c in ("idle", "loaded")]
            print(f"{'(pass vocabulary ' + key + ')':<28}  {cells[0]:7.3f}  {cells[1]:7.3f}")
        print("\nevery run (seconds):")
        for condition in ("idle", "loaded"):
            print(f"  {condition}: " + " ".join(f"{s:.3f}" for s in report["conditions"][condition]["seconds"]))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
