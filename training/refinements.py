"""The refinement edits (`models/refinements.txt`): chosen greedily on training functions, as the coreset is.

    python -m training.refinements --labels data/labels-rank-KEY,data/labels-winners-KEY          # print the curve
    python -m training.refinements --labels data/labels-rank-KEY,data/labels-winners-KEY --write  # and ship it

The engine's `refine` source spends the last part of a budget on edits of the best list measured before
(`lsp_server.engine.refine`). Here each training function of a package-balanced sample plays that first
part from its labels: -Oz and the coreset's first `--first` lists (the engine's `FIRST_LISTS`, 6). Every
candidate edit of its best list is then compiled (on Dask, like the labels: a local cluster by default,
`--scheduler` for a cluster). Greedy by marginal gain on the choosing functions (the
coreset's hash split), the curve on the held-out ones; the file is written only when the edits add gain
on the held-out functions.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lsp_server.engine import Candidate, Measurement
from lsp_server.engine.refine import FIRST_LISTS, Edit, RefineSource, best_and_runner_up
from training.coreset import BIG, HELD_OUT_PERCENT, as_costs, complete_rows, gain_curve, greedy, held_out, write_greedy_file
from training.labels import (
    FAILED,
    PLUGIN_NAME,
    CompilerPlugin,
    _function,
    _worker_optimizer,
    close_client,
    open_client,
    read_coreset,
)

ROOT = Path(__file__).resolve().parents[1]

# Whole-list edits, short pipelines after the best list, short pipelines before it.
CANDIDATE_EDITS = (
    "twice", "with-second", "second-then", "drop-first", "drop-last",
    *(f"append {p}" for p in (
        "gvn-sink", "simplifycfg", "instcombine", "gvn", "newgvn", "early-cse<memssa>", "gvn-hoist", "jump-threading", "dse", "adce",
        "sroa", "mem2reg", "reassociate", "sink", "mergereturn", "simplifycfg<hoist-common-insts>", "simplifycfg<no-keep-loops>",
        "simplifycfg<sink-common-insts>", "default<Oz>", "default<Os>", "default<O1>", "instcombine,simplifycfg",
        "gvn-sink,simplifycfg", "gvn,instcombine", "mldst-motion", "memcpyopt", "loop-rotate", "function(loop-mssa(licm))", "sccp",
        "correlated-propagation", "bdce", "slsr", "speculative-execution", "tailcallelim", "loop-deletion", "instsimplify",
        "mergeicmps", "constraint-elimination", "div-rem-pairs", "aggressive-instcombine", "gvn-sink,instcombine,simplifycfg",
        "early-cse<memssa>,instcombine", "loop-simplifycfg", "jump-threading,simplifycfg", "gvn-hoist,simplifycfg",
    )),
    *(f"prepend {p}" for p in (
        "mem2reg", "sroa", "gvn-sink", "mergereturn", "simplifycfg", "jump-threading", "instcombine", "gvn", "early-cse<memssa>",
        "gvn-hoist", "loop-rotate", "default<Oz>", "lower-expect", "tailcallelim", "reassociate", "mem2reg,gvn-sink",
        "mem2reg,jump-threading", "mem2reg,simplifycfg", "mem2reg,instcombine", "sroa,gvn-sink", "default<O1>",
    )),
)


def edit_counts(text: str, measured: Sequence[tuple[str, str, int]], edits: Sequence[Edit]) -> np.ndarray:
    """The count under each edit of the best of `measured` ((passes, source, count) rows), FAILED where the
    edit does not apply or fails. The best and the runner-up are the engine's own (`best_and_runner_up`)."""
    optimizer, _ = _worker_optimizer()
    counts = np.full(len(edits), FAILED, dtype=np.int32)
    function = _function(text)
    if function is None:
        return counts
    best, second = best_and_runner_up([Measurement(optimizer.vocabulary.check(p), s, c) for p, s, c in measured])
    if best is None:
        return counts
    for index, edit in enumerate(edits):
        passes = edit.apply(best.passes, second.passes if second else None)
        if passes is not None:
            result = optimizer.measure(function, Candidate(passes, RefineSource.name))
            if result.ok:
                counts[index] = result.count
    return counts


def edit_shard(items: Sequence[tuple[str, list]], lines: Sequence[str]) -> np.ndarray:
    """A Dask task: the counts of a few functions under every edit (`lines` as in `refinements.txt`)."""
    edits = [Edit.parse(line) for line in lines]
    return np.stack([edit_counts(text, measured, edits) for text, measured in items])


def first_lists(pool: Sequence[str], costs: np.ndarray, oz: np.ndarray, coreset: Sequence[str], first: int) -> list[list[tuple[str, str, int]]]:
    """Per function, what the engine has measured before its edits: -Oz and the coreset's first lists."""
    columns = [(pool.index(p), p) for p in coreset[:first] if p in pool]
    if len(columns) < min(first, len(coreset)):
        raise SystemExit("the labels lack some of the coreset's first lists; label them first (training.labels --lists)")
    rows = []
    for row in range(len(oz)):
        measured = [("default<Oz>", "oz", int(oz[row]))]
        measured += [(passes, "coreset", int(costs[row, c])) for c, passes in columns if costs[row, c] < BIG]
        rows.append(measured)
    return rows


def coreset_without(pool: Sequence[str], labelled: list, unseen: set[str], size: int) -> tuple[list[str], list]:
    """A coreset chosen greedily on the packages not in `unseen`, and the labelled rows of `unseen`."""
    known = {row["pkg"] for _, row in labelled}
    if not unseen <= known:
        raise SystemExit(f"no labelled function of {', '.join(sorted(unseen - known))}")
    fit = [row for _, row in labelled if row["pkg"] not in unseen]
    if not fit:
        raise SystemExit("--unseen-packages leaves no package to choose the coreset on")
    costs = as_costs(np.stack([row["counts"] for row in fit]))
    oz = np.asarray([row["oz"] for row in fit], dtype=np.int64)
    return [pool[column] for column, _ in greedy(costs, oz, size)], [(h, row) for h, row in labelled if row["pkg"] in unseen]


def sample(pkgs: Sequence[str], per_package: int, seed: int) -> np.ndarray:
    """Row numbers: at most `per_package` functions of each package (openssl alone is 43% of the corpus)."""
    rng = random.Random(seed)
    by_package: dict[str, list[int]] = {}
    for row, pkg in enumerate(pkgs):
        by_package.setdefault(pkg, []).append(row)
    chosen = []
    for rows in by_package.values():
        rng.shuffle(rows)
        chosen += rows[:per_package]
    return np.asarray(sorted(chosen), dtype=np.int64)


def measure_edits(client, texts: Sequence[str], measured: Sequence[list], edits: Sequence[str], shard_size: int) -> np.ndarray:
    from distributed import as_completed
    from tqdm import tqdm

    edits_future = client.scatter(list(edits), broadcast=True)
    pending = {}
    for offset in range(0, len(texts), shard_size):
        items = list(zip(texts[offset : offset + shard_size], measured[offset : offset + shard_size]))
        pending[client.submit(edit_shard, items, edits_future, pure=False)] = offset
    counts = np.full((len(texts), len(edits)), FAILED, dtype=np.int32)
    with tqdm(total=len(texts), desc="edits", unit="fn", file=sys.stderr, smoothing=0.05) as bar:
        for future in as_completed(pending):
            offset = pending.pop(future)
            block = future.result()
            counts[offset : offset + len(block)] = block
            bar.update(len(block))
    return counts


def check_budgets(texts: Sequence[str], coreset: Sequence[str], edits: Sequence[str], budgets: Sequence[int], *, backend: str,
                  opt_path: str, jobs: int) -> list[dict]:
    """The engine itself on these functions, at each budget: the coreset alone against the coreset, then
    the edits (the `refine` source as shipped, `FIRST_LISTS` included). Gains under -Oz, in percent."""
    from lsp_server.compiler import find_opt, load_vocabulary, open_backend
    from lsp_server.engine import CoresetSource, Optimizer

    opt = find_opt(opt_path or None)
    functions = [f for f in map(_function, texts) if f is not None]
    sources = [CoresetSource(list(coreset)), RefineSource([Edit.parse(line) for line in edits])]
    optimizer = Optimizer(opt, sources=sources, vocabulary=load_vocabulary(opt), jobs=jobs, backend=open_backend(backend, opt, workers=jobs))
    rows = []
    try:
        for budget in budgets:
            row = {"budget": budget, "functions": len(functions)}
            for name, names in (("coreset", ["coreset"]), ("coreset_refine", ["coreset", "refine"])):
                results = [r for r in optimizer.optimize_all(functions, budget=budget, sources=names) if r.oz.ok and r.best]
                oz = sum(r.oz.count for r in results)
                row[name] = round(100.0 * (oz - sum(r.best.count for r in results)) / max(oz, 1), 3)
            print(f"budget {budget:>3}: coreset {row['coreset']:.2f}%, coreset then edits {row['coreset_refine']:.2f}% "
                  f"under -Oz ({len(functions)} held-out functions, the engine itself)", flush=True)
            rows.append(row)
    finally:
        optimizer.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", required=True, help="label folders (comma-separated) holding -Oz and the coreset's lists")
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "corpus")
    parser.add_argument("--coreset", type=Path, default=ROOT / "models" / "coreset.txt")
    parser.add_argument("--first", type=int, default=FIRST_LISTS, help="coreset lists measured before the edits (the engine's)")
    parser.add_argument("--unseen-packages", default="",
                        help="choose the edits on these packages only, after a coreset chosen without them (as for code "
                             "the shipped coreset never saw) instead of after --coreset")
    parser.add_argument("--per-package", type=int, default=400)
    parser.add_argument("--max-edits", type=int, default=12)
    parser.add_argument("--held-out-percent", type=int, default=HELD_OUT_PERCENT, help="functions held out by hash, for the curve and the check")
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="auto", choices=("auto", "opt", "libllvm"))
    parser.add_argument("--opt", default="")
    parser.add_argument("--scheduler", default="", help="address of a running Dask scheduler; default: a local cluster")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "refinements.txt")
    parser.add_argument("--curve", type=Path, default=ROOT / "docs" / "bench" / "refine-curve.json")
    parser.add_argument("--write", action="store_true", help="write --out when the edits add gain on held-out functions")
    parser.add_argument("--save", type=Path, default=None, help="also keep every function's count under every edit (.npz)")
    parser.add_argument("--check-budgets", default="",
                        help="then run the engine on the held-out functions at these budgets (e.g. 3,5,7,8,10,30): the coreset "
                             "alone against the coreset and the chosen edits; --workers jobs on this machine")
    args = parser.parse_args(argv)

    pool, labelled = complete_rows([Path(f) for f in args.labels.split(",")])
    coreset = read_coreset(args.coreset)
    if args.unseen_packages:
        coreset, labelled = coreset_without(pool, labelled, set(args.unseen_packages.split(",")), len(coreset))
        print(f"coreset of {len(coreset)} lists chosen without {args.unseen_packages}; edits chosen on their {len(labelled)} functions")
    labelled = [labelled[row] for row in sample([row["pkg"] for _, row in labelled], args.per_package, args.seed)]
    hashes = [h for h, _ in labelled]
    oz = np.asarray([row["oz"] for _, row in labelled], dtype=np.int64)
    costs = as_costs(np.stack([row["counts"] for _, row in labelled]))
    measured = first_lists(pool, costs, oz, coreset, args.first)
    texts = [(args.corpus / row["path"]).read_text(errors="replace") for _, row in labelled]
    edits = list(CANDIDATE_EDITS)
    client = open_client(args.scheduler, args.workers)
    started = time.perf_counter()
    try:
        client.register_plugin(CompilerPlugin(args.backend, args.opt), name=PLUGIN_NAME)
        counts = measure_edits(client, texts, measured, edits, args.shard_size)
    finally:
        close_client(client)
    seconds = time.perf_counter() - started
    print(f"refinements: {len(texts)} functions x {len(edits)} edits in {seconds:.1f} s ({len(texts) * len(edits) / seconds:.0f} compilations/s)")

    base = np.asarray([min(count for _, _, count in m) for m in measured], dtype=np.int64)
    if args.save:
        np.savez_compressed(args.save, edits=np.asarray(edits), counts=counts, base=base, oz=oz, hashes=np.asarray(hashes),
                            pkgs=np.asarray([row["pkg"] for _, row in labelled]))
    edit_costs = as_costs(counts)
    held = held_out(hashes, args.held_out_percent)
    choose = ~held
    picked = greedy(edit_costs[choose], base[choose], args.max_edits)
    columns = [column for column, _ in picked]
    with_base = np.column_stack([base, edit_costs])  # column 0: the first lists alone
    train_curve = gain_curve(with_base[choose], oz[choose], [0, *(c + 1 for c in columns)])
    held_curve = gain_curve(with_base[held], oz[held], [0, *(c + 1 for c in columns)])
    print(f"{int(choose.sum())} choosing functions, {int(held.sum())} held out; gain under -Oz of -Oz and the coreset's first {args.first} lists:"
          f" choosing {train_curve[0]:.2f}%, held out {held_curve[0]:.2f}%")
    print(f"{'edits':>5}  {'choosing %':>10}  {'held-out %':>10}  removes  edit")
    for index, (column, removed) in enumerate(picked):
        print(f"{index + 1:>5}  {train_curve[index + 1]:>10.2f}  {held_curve[index + 1]:>10.2f}  {removed:>7}  {edits[column]}")
    # The ceiling of any edit predictor: on each held-out function, the best of all candidate edits.
    oracle = gain_curve(np.column_stack([base[held], edit_costs[held].min(axis=1)]), oz[held], [0, 1])[1]
    print(f"held out, the best of all {len(edits)} edits on each function (a perfect choice of one edit): {oracle:.2f}%")
    checks = []
    if args.check_budgets:
        checks = check_budgets([t for t, h in zip(texts, held) if h], coreset, [edits[c] for c in columns],
                               [int(b) for b in args.check_budgets.split(",")], backend=args.backend, opt_path=args.opt, jobs=args.workers)
    args.curve.parent.mkdir(parents=True, exist_ok=True)
    args.curve.write_text(json.dumps({
        "labels": args.labels, "first": args.first, "functions": len(texts), "choosing_functions": int(choose.sum()),
        "held_out_functions": int(held.sum()), "seconds": round(seconds, 1), "edits": [edits[c] for c in columns],
        "removed": [r for _, r in picked], "choosing_gain_percent": [round(g, 3) for g in train_curve],
        "held_out_gain_percent": [round(g, 3) for g in held_curve],
        "held_out_best_single_edit_percent": round(oracle, 3),
        "per_edit_held_out_functions_improved": [int((edit_costs[held][:, c] < base[held]).sum()) for c in columns],
        "engine_check": checks,
    }, indent=1) + "\n")
    print(f"curve: {args.curve}")
    adds = len(held_curve) > 1 and held_curve[-1] > held_curve[0]
    if args.write and adds:
        coreset_words = f"a coreset chosen without their packages ({args.unseen_packages})" if args.unseen_packages else "the coreset"
        write_greedy_file(args.out, [
            "# PassPilot refinement edits: the `refine` source tries them in order on the best list measured before them.",
            f"# Chosen by `python -m training.refinements` on {int(choose.sum())} training functions (never the benchmark).",
            f"# Each edit was compiled on the best of -Oz and the first {args.first} lists of {coreset_words}.",
            f"# On {int(held.sum())} held-out functions the first lists are {held_curve[0]:.2f}% under -Oz, "
            f"and {held_curve[-1]:.2f}% with these {len(columns)} edits.",
        ], [(edits[column], removed) for column, removed in picked])
    elif args.write:
        print(f"the edits add nothing on held-out functions: {args.out} left as it is")
    return 0


if __name__ == "__main__":
    sys.exit(main())
