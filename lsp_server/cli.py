"""`passpilot optimize | bench | serve`.

Exit codes: 0 success, 2 bad input (reported as `file:line:col: message`), 3 no usable `opt`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from . import __version__
from .compiler import BACKEND_CHOICES, OptNotFound, verify
from .engine import (
    DEFAULT_SOURCES,
    SOURCE_NAMES,
    EngineSettings,
    FunctionResult,
    UnknownFunction,
    assemble,
    defaults,
    standalone_functions,
    write_back,
)
from .compiler.behaviour import DEFAULT_TRIALS, BehaviourOptions
from .engine.behaviour import BehaviourVerdict, RewriteChecker, write_back_checked
from .engine.deep import SEED_SOURCES, DeepOptions, DeepResult, DeepSearch
from .ir import InvalidIR, IRError, StandaloneFunction, llvm_diagnostic

EXIT_OK, EXIT_BAD_INPUT, EXIT_NO_OPT = 0, 2, 3


class BadInput(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="passpilot: %(message)s")
    if args.command == "serve":
        from .server import serve

        return serve(args.tcp)
    try:
        sources = _sources(args.sources)
    except BadInput as error:
        parser.error(str(error))
    if args.time is None and (args.calls is not None or args.seed is not None):
        parser.error("--calls and --seed go with --time (the deep search)")
    try:
        if args.command == "optimize":
            return _optimize(args, sources)
        return _bench(args, sources)
    except OptNotFound as error:
        print(f"passpilot: {error}", file=sys.stderr)
        return EXIT_NO_OPT
    except BadInput as error:
        print(str(error), file=sys.stderr)
        return EXIT_BAD_INPUT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="passpilot", description="Compiler-verified size optimization of LLVM IR.")
    parser.add_argument("--version", action="version", version=f"passpilot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    commands = parser.add_subparsers(dest="command", required=True)

    def engine_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--budget", type=_non_negative, default=defaults.BUDGET, help="opt calls per function beyond -Oz")
        sub.add_argument("--sources", default=",".join(DEFAULT_SOURCES), help=f"comma-separated, from {','.join(SOURCE_NAMES)}")
        sub.add_argument("--model", default=defaults.MODEL_PATH, help="GGUF model path, or 'none' (default: the shipped model)")
        sub.add_argument("--profile", default=defaults.MODEL_PROFILE, choices=["passpilot", "llm-compiler-ftd"], help="prompt profile")
        sub.add_argument("--samples", type=_positive, default=defaults.MODEL_SAMPLES, help="model answers per function")
        sub.add_argument("--gpu-layers", type=int, default=defaults.GPU_LAYERS, help="model layers offloaded to the GPU (-1: all)")
        sub.add_argument("--threads", type=_non_negative, default=defaults.MODEL_THREADS, help="model CPU threads (0: from the model's size; 1 for the shipped model)")
        sub.add_argument("--opt", default="", help="the opt executable (default: PASSPILOT_OPT, else newest on PATH)")
        sub.add_argument("--jobs", type=_non_negative, default=defaults.JOBS, help="parallel opt processes (default: all cores)")
        sub.add_argument("--timeout", type=float, default=defaults.TIMEOUT_S, help="seconds before an opt run counts as hung")
        sub.add_argument(
            "--backend", default=defaults.BACKEND, choices=BACKEND_CHOICES, help="run candidates in opt processes or libLLVM workers (auto: libllvm when it loads)"
        )
        sub.add_argument("--time", type=_positive_seconds, metavar="SECONDS", help="deep search: seconds per function (instead of --budget)")
        sub.add_argument("--calls", type=_positive, metavar="N", help="deep search: at most N candidates per function beyond -Oz")
        sub.add_argument("--seed", type=int, help=f"deep search: the seed of its choices (default {DeepOptions.seed})")
        sub.add_argument("--json", action="store_true", help="machine-readable output")

    optimize = commands.add_parser("optimize", help="optimize the functions of a .ll file")
    optimize.add_argument("file", type=Path)
    optimize.add_argument("-o", "--output", type=Path, help="write the rewritten module here ('-' for stdout)")
    optimize.add_argument("--function", action="append", dest="functions", metavar="NAME", help="only these functions")
    optimize.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    optimize.add_argument("--cache-dir", default="", help="result cache folder (default: the platform cache dir)")
    optimize.add_argument(
        "--check-behaviour", action="store_true", help="run each rewrite against the original on random inputs (clang-22); block those that differ"
    )
    optimize.add_argument("--behaviour-trials", type=_positive, default=DEFAULT_TRIALS, help="inputs per behaviour check")
    engine_options(optimize)

    bench = commands.add_parser("bench", help="measure the engine on every .ll file under a folder")
    bench.add_argument("directory", type=Path)
    bench.add_argument("--limit", type=_non_negative, default=0, help="an even sample of N functions (0: all)")
    bench.add_argument("--cache", action="store_true", help="use the result cache (off: times are real opt runs)")
    engine_options(bench)

    serve = commands.add_parser("serve", help="run the language server")
    serve.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    serve.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP address instead of stdio")
    return parser


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _sources(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SOURCE_NAMES]
    if unknown:
        raise BadInput(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCE_NAMES)}")
    return names


def _settings(args, *, use_cache: bool, cache_dir: str = "") -> EngineSettings:
    model = args.model
    if "model" not in _sources(args.sources):
        model = "none"
    return EngineSettings(
        opt_path=args.opt,
        model_path=model,
        model_profile=args.profile,
        samples=args.samples,
        gpu_layers=args.gpu_layers,
        model_threads=args.threads,
        cache_dir=cache_dir,
        use_cache=use_cache,
        jobs=args.jobs,
        timeout=args.timeout,
        backend=args.backend,
    )


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _deep_options(args, sources: list[str]) -> DeepOptions:
    """`--time`, `--calls`, `--seed`; the starting lists come from the model and the coreset if listed."""
    given = {"seconds": args.time, "calls": args.calls, "seed": args.seed}
    chosen = {key: value for key, value in given.items() if value is not None}
    return DeepOptions(**chosen, sources=tuple(name for name in SEED_SOURCES if name in sources))


def _deep_report(args, sources: list[str]) -> dict:
    """The deep search's settings for the JSON reports, when `--time` asked for it."""
    if args.time is None:
        return {}
    options = _deep_options(args, sources)
    return {"deep": {"seconds": options.seconds, "calls": options.calls or None, "seed": options.seed}}


def read_ir(path: Path) -> str:
    """The text of a .ll file, or BadInput with a `file:line:col: message`."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadInput(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start)
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1)
        raise BadInput(f"{path}:{line + 1}:{column + 1}: invalid UTF-8 byte 0x{data[error.start]:02x}; LLVM IR text must be UTF-8") from None
    if not text.strip():
        raise BadInput(f"{path}:1:1: the file is empty; expected LLVM IR text")
    return text


def _located(path: Path, errors: list[IRError]) -> str:
    return "\n".join(error.format(str(path)) for error in errors)


def _optimize(args, sources: list[str]) -> int:
    text = read_ir(args.file)
    try:
        _, functions = standalone_functions(text, args.functions)
    except InvalidIR as invalid:
        raise BadInput(_located(args.file, invalid.errors)) from None
    except UnknownFunction as error:
        raise BadInput(f"{args.file}: {error}") from None
    output = _output_target(args.output)
    assembly = assemble(_settings(args, use_cache=not args.no_cache, cache_dir=args.cache_dir))
    for warning in assembly.warnings:
        print(f"passpilot: {warning}", file=sys.stderr)
    optimizer = assembly.optimizer
    try:
        _check_with_compiler(optimizer, args.file, text)
        if args.time is not None:
            with DeepSearch(optimizer, _deep_options(args, sources)) as deep:
                results = deep.optimize_all(functions)
        else:
            results = optimizer.optimize_all(functions, budget=args.budget, sources=sources)
        verdicts = _behaviour_verdicts(args, optimizer, text, results) if args.check_behaviour else None
        module = write_back(optimizer, text, results) if verdicts is None else write_back_checked(optimizer, text, results, verdicts)
    finally:
        optimizer.close()
    rows = [_row(outcome.result, outcome.verified) for outcome in module.outcomes]
    for row, verdict in zip(rows, verdicts or []):
        row["behaviour"] = verdict.to_json()
    report = {
        "opt": {"path": optimizer.opt.path, "version": optimizer.opt.version},
        "backend": optimizer.backend.identity.report(),
        "model": assembly.model_identity,
        "budget": args.budget,
        "sources": sources,
        **_deep_report(args, sources),
        "functions": rows,
        "totals": _totals(rows),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    if output == "-":
        sys.stdout.write(module.text)
    elif output is not None:
        _write_atomically(output, module.text)
    return EXIT_OK


def _behaviour_verdicts(args, optimizer, text: str, results: list[FunctionResult]) -> list[BehaviourVerdict]:
    """`--check-behaviour`: compare each rewrite with the original on random inputs (engine.behaviour)."""
    with RewriteChecker(optimizer, BehaviourOptions(trials=args.behaviour_trials)) as checker:
        return checker.verdicts(text, results)


def _check_with_compiler(optimizer, path: Path, text: str) -> None:
    """The module must also be valid for the `opt` that will run on it (it can be stricter than llvmlite)."""
    check = verify(optimizer.opt, text, timeout=max(optimizer.timeout, 5.0))
    if check.ok:
        return
    if check.error and "timed out" in check.error:
        print(f"passpilot: {path}: opt did not finish checking the module ({check.error}); continuing", file=sys.stderr)
        return
    problem = llvm_diagnostic(check.error or "", text)
    if problem.line == 0 and problem.column == 0 and "<stdin>:" not in (check.error or ""):
        raise BadInput(f"{path}:1:1: opt rejects this module: {check.error}")
    raise BadInput(problem.format(str(path)))


def _output_target(output: Path | None) -> Path | str | None:
    """Check `-o` before any work: its folder must exist and be writable, and it must not be a folder."""
    if output is None or str(output) == "-":
        return None if output is None else "-"
    folder = output.parent if str(output.parent) else Path(".")
    if output.is_dir():
        raise BadInput(f"{output}: is a folder; -o needs a file path")
    if not folder.is_dir():
        raise BadInput(f"{output}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise BadInput(f"{output}: not writable")
    return output


def _write_atomically(path: Path, text: str) -> None:
    """Write next to the target and rename over it, so a failed write never truncates the old file."""
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise BadInput(f"{path}: could not write the output ({error.strerror or error}); the file is unchanged") from None


def _row(result: FunctionResult, verified: bool) -> dict:
    prediction = result.model_prediction
    return {
        "name": result.name,
        **result.figures(),
        "verified": verified,
        "optnone_removed": result.function.optnone_removed,
        "opt_calls": result.opt_calls,
        **({"search": result.search_figures()} if isinstance(result, DeepResult) else {}),
        "failed": [{"passes": m.passes, "source": m.source, "error": m.error} for m in result.measurements if not m.ok],
        "predicted": (
            {"original": prediction.predicted_before, "best": prediction.predicted_after, "passes": prediction.passes}
            if prediction
            else None
        ),
    }


def _totals(rows: list[dict]) -> dict:
    measured = [r for r in rows if r["oz"] is not None and r["best"] is not None]
    oz = sum(r["oz"] for r in measured)
    best = sum(r["best"] for r in measured)
    return {
        "functions": len(rows),
        "original": sum(r["original"] for r in rows),
        "oz": oz,
        "best": best,
        "gain_vs_oz_percent": round(100.0 * (oz - best) / oz, 3) if oz else 0.0,
        "improved_functions": sum(1 for r in measured if r["best"] < r["oz"]),
    }


def _print_table(report: dict) -> None:
    rows = report["functions"]
    width = max([len("function"), *(len(r["name"]) for r in rows)])
    print(
        f"opt {report['opt']['version']} ({report['opt']['path']}), backend {report['backend']['name']}"
        + (f", model {report['model']}" if report["model"] else "")
    )
    print(f"{'function':<{width}}  {'original':>8}  {'-Oz':>6}  {'best':>6}  {'vs -Oz':>7}  {'source':<8}  passes")
    for r in rows:
        change = f"{100.0 * (r['best'] - r['oz']) / r['oz']:+.1f}%" if r["oz"] and r["best"] is not None else "n/a"
        mark = "" if r["verified"] else "  (not written back)"
        print(
            f"{r['name']:<{width}}  {r['original']:>8}  {_figure(r['oz']):>6}  {_figure(r['best']):>6}  {change:>7}  "
            f"{r['source'] or '-':<8}  {r['passes'] or '-'}{mark}"
        )
        if r.get("behaviour"):
            _print_behaviour(r["behaviour"], width)
    t = report["totals"]
    if report.get("deep"):
        searched = [r["search"] for r in rows if r.get("search")]
        print(f"deep search: {sum(s['tried'] for s in searched)} candidates in {sum(s['seconds'] for s in searched):.1f} s")
    print(
        f"{'total':<{width}}  {t['original']:>8}  {t['oz']:>6}  {t['best']:>6}  {0.0 - t['gain_vs_oz_percent']:>+6.1f}%  "
        f"{t['improved_functions']} of {t['functions']} functions smaller than -Oz"
    )


def _print_behaviour(behaviour: dict, width: int) -> None:
    """Under a function's row: its behaviour check, and the inputs that show a blocked rewrite."""
    indent = " " * (width + 2)
    print(f"{indent}behaviour: {behaviour['summary']}")
    for index, blocked in enumerate(behaviour["blocked"]):
        print(f"{indent}  blocked {blocked['passes']} ({blocked['count']} instructions): {blocked['diagnosis']}")
        for line in (blocked["check"]["counterexample"] or "").splitlines() if index == 0 else []:
            print(f"{indent}    {line}")


def _figure(value) -> str:
    return "-" if value is None else str(value)


def benchmark_sample(directory: Path, limit: int) -> tuple[list[tuple[Path, StandaloneFunction]], list[str]]:
    """The functions of every .ll file under a folder with their files, or an even sample of `limit` of
    them (0: all), and the files skipped with why. `bench` and scripts/bench_deep.py take the same sample."""
    files = sorted(path for path in directory.rglob("*.ll") if not any(part.startswith(".") for part in path.relative_to(directory).parts))
    if not files:
        raise BadInput(f"{directory}: no .ll files found")
    functions, skipped = [], []
    for path in files:
        try:
            functions += [(path, function) for function in standalone_functions(read_ir(path))[1]]
        except (BadInput, InvalidIR) as error:
            skipped.append(f"{path}: {error}")
    if limit and limit < len(functions):
        # An even spread over the sorted functions, so that every package is represented.
        functions = [functions[i * len(functions) // limit] for i in range(limit)]
    return functions, skipped


def _bench(args, sources: list[str]) -> int:
    sample, skipped = benchmark_sample(args.directory, args.limit)
    assembly = assemble(_settings(args, use_cache=args.cache))
    for warning in assembly.warnings:
        print(f"passpilot: {warning}", file=sys.stderr)
    optimizer = assembly.optimizer
    rows, seconds = [], []
    model_candidates = model_valid = 0
    errors_before, errors_after = [], []
    deep = DeepSearch(optimizer, _deep_options(args, sources)) if args.time is not None else None
    try:
        for path, function in sample:
            started = time.perf_counter()
            result = deep.search(function) if deep else optimizer.optimize(function, budget=args.budget, sources=sources)
            seconds.append(time.perf_counter() - started)
            # One auditable row per function: `opt -passes=<passes>` on the function's standalone module
            # (`standalone_functions` of `directory/file`) gives `best`, and `default<Oz>` gives `oz`.
            row = {"file": str(path.relative_to(args.directory)), **_row(result, verified=result.best is not None)}
            rows.append({**row, "seconds": round(seconds[-1], 4)})
            for m in result.measurements:
                if m.source != "model":
                    continue
                model_candidates += 1
                model_valid += not m.rejected
                if m.predicted_before is not None:
                    errors_before.append(abs(m.predicted_before - result.original))
                if m.predicted_after is not None and m.ok:
                    errors_after.append(abs(m.predicted_after - m.count))
    finally:
        if deep is not None:
            deep.close()
        optimizer.close()
    totals = _totals(rows)
    report = {
        "directory": str(args.directory),
        "opt": {"path": optimizer.opt.path, "version": optimizer.opt.version},
        "backend": optimizer.backend.identity.report(),
        "model": assembly.model_identity,
        "budget": args.budget,
        "sources": sources,
        **_deep_report(args, sources),
        "jobs": optimizer.jobs,
        "totals": totals,
        "candidates": sum(1 + row["opt_calls"] for row in rows),  # compiler runs: -Oz plus the budget spent
        "seconds_total": round(sum(seconds), 3),
        "seconds_per_function": {
            "p50": round(_percentile(seconds, 50), 4),
            "p95": round(_percentile(seconds, 95), 4),
            "mean": round(statistics.fmean(seconds), 4) if seconds else 0.0,
        },
        "model_answers": (
            {
                "answers": model_candidates,
                "valid_share": round(model_valid / model_candidates, 4),
                "mae_original": round(statistics.fmean(errors_before), 3) if errors_before else None,
                "mae_best": round(statistics.fmean(errors_after), 3) if errors_after else None,
            }
            if model_candidates
            else None
        ),
        "skipped_files": skipped,
        "functions": rows,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        s = report["seconds_per_function"]
        print(f"passpilot bench {args.directory}: {totals['functions']} functions, budget {args.budget}, sources {','.join(sources)}")
        print(f"  opt {optimizer.opt.version}, backend {optimizer.backend.identity.name}, {optimizer.jobs} jobs" + (f", model {assembly.model_identity}" if assembly.model_identity else ""))
        print(f"  instructions: original {totals['original']}, -Oz {totals['oz']}, best {totals['best']}")
        print(f"  gain vs -Oz: {totals['gain_vs_oz_percent']:.2f}% ({totals['improved_functions']} functions improved)")
        print(f"  time per function: p50 {s['p50']:.3f} s, p95 {s['p95']:.3f} s, mean {s['mean']:.3f} s")
        if deep is not None:
            print(f"  deep search: {report['candidates'] / max(1, len(rows)):.0f} candidates per function, --time {args.time:g} s")
        if report["model_answers"]:
            m = report["model_answers"]
            print(f"  model answers: {m['answers']}, valid {100 * m['valid_share']:.1f}%, MAE original {m['mae_original']}, MAE best {m['mae_best']}")
        for line in skipped:
            print(f"  skipped {line}")
    return EXIT_OK


def _percentile(values: list[float], percent: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * (len(ordered) - 1))))
    return ordered[index]


def run() -> int:
    """Console entry point: a closed pipe (`passpilot ... | head`) ends quietly."""
    try:
        return main()
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(run())
