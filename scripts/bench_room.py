"""How much a better choice of ONE list could gain at budget 1, and where the model's first pick stands in
that room: on the public benchmark, or on any labelled corpus (the held-out training packages, say).

    .venv/bin/python scripts/bench_room.py                       # the public benchmark
    .venv/bin/python scripts/bench_room.py --corpus data/corpus --labels data/labels-val --max-instructions 1000 \
        --out docs/bench/ranking/room-heldout.json               # the corpus built for the 8 held-out packages

Every function is measured under every list the shipped model ranks and the levels (`training.labels --lists
training/model/ranking-lists.txt`, resumable; for the benchmark into `data/benchmark-room-labels/`, a label
folder for this diagnostic only: never give it to a training step). The model (`--model`, the shipped one by
default) picks its first list for every function as the engine's `model` source does (its best-scored list
when `passpilot.ranking.top` is 1). It prints, under -Oz in total: the coreset's first list alone; the best
single list in hindsight (chosen on these functions themselves: no fixed first list can do better); the
model's first pick; a perfect choice of one coreset list, and of one of all the lists, per function; then the
same by package and by size, and how much of the room the functions with the most hold. Nothing here chooses
anything the product uses.

Writes `--out` (`docs/bench/ranking/room.json`): the figures and one row per function (file, -Oz, the
coreset's first list, the model's pick, the best count and the index of its list in `pool`), largest room first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.coreset import as_costs, gain_curve  # noqa: E402
from training.labels import LabelStore, read_coreset  # noqa: E402

SIZES = ((0, 50), (50, 200), (200, 1000), (1000, None))


def model_picks(model: Path, corpus: Path, paths: list[str], pool: list[str], threads: int) -> np.ndarray:
    """The pool column of the model's first list for each function (-1: no answer, or a list outside the pool)."""
    from lsp_server.model import load_proposer
    from lsp_server.model.ranking import blended_order

    proposer = load_proposer(model, threads=threads)
    try:
        picks = []
        for path in paths:
            scores, _ = proposer.scores((corpus / path).read_text())
            first = None if scores is None else proposer.lists[blended_order(scores, proposer.top)[0]]
            picks.append(pool.index(first) if first in pool else -1)
    finally:
        proposer.close()
    return np.asarray(picks, dtype=np.int64)


def gain(counts: np.ndarray, oz: np.ndarray) -> float:
    """Percent under -Oz in total, -Oz always measured beside."""
    return round(100 * float(oz.sum() - np.minimum(counts, oz).sum()) / float(oz.sum()), 2)


def room(labels, coreset: list[str], picks: np.ndarray | None) -> dict:
    """The figures and per-function rows of the module docstring, from a label folder, the coreset's lists and
    the model's pick for each usable row (`model_picks`; None: no model column)."""
    usable = labels.usable()
    if picks is not None and len(picks) != int(usable.sum()):
        raise ValueError(f"{len(picks)} picks for {int(usable.sum())} usable rows")
    costs = as_costs(labels.counts[usable])
    oz = labels.oz[usable].astype(np.int64)
    paths = [p for p, keep in zip(labels.paths, usable) if keep]
    pkgs = np.asarray([p for p, keep in zip(labels.pkgs, usable) if keep])
    pool = labels.pool
    coreset_columns = [pool.index(text) for text in coreset]
    first = costs[:, coreset_columns[0]]
    best_column = costs.argmin(axis=1)
    best = costs[np.arange(len(oz)), best_column]

    model = None
    if picks is not None:
        # No pick (the model gave none, or a list outside the pool): -Oz alone, as the engine would do.
        model = np.where(picks >= 0, costs[np.arange(len(oz)), np.maximum(picks, 0)], oz)

    singles = [gain(costs[:, column], oz) for column in range(len(pool))]
    hindsight = int(np.argmax(singles))
    curve = [round(value, 2) for value in gain_curve(costs, oz, coreset_columns)]  # the first 1, 2, ... coreset lists
    report = {
        "functions": int(len(oz)), "oz_total": int(oz.sum()), "lists": len(pool),
        "coreset_first": gain(first, oz),
        "coreset_order": {str(k): curve[min(k, len(curve)) - 1] for k in (1, 3, 10, 30)},
        "best_single_list_in_hindsight": {"gain": singles[hindsight], "passes": pool[hindsight]},
        "perfect_choice_of_one_coreset_list": curve[-1],
        "perfect_choice_of_one_list": gain(best, oz),
        "model_first_pick": None if model is None else gain(model, oz),
        "model_picks_found": None if picks is None else int((picks >= 0).sum()),
    }
    groups = {f"package {name}": pkgs == name for name in sorted(set(pkgs))}
    for low, high in SIZES:
        groups[f"-Oz size {low}-{high or '…'}"] = (oz >= low) & (oz < (high or np.iinfo(np.int64).max))
    report["groups"] = {
        name: {"functions": int(mask.sum()), "oz_total": int(oz[mask].sum()), "coreset_first": gain(first[mask], oz[mask]),
               "model_first_pick": None if model is None else gain(model[mask], oz[mask]), "perfect": gain(best[mask], oz[mask])}
        for name, mask in groups.items() if mask.any()
    }
    headroom = np.minimum(first, oz) - np.minimum(best, oz)
    order = np.argsort(-headroom, kind="stable")
    held = np.cumsum(headroom[order])
    total = int(headroom.sum())
    report["room_over_coreset_first"] = {
        "functions": int((headroom > 0).sum()), "instructions": total,
        "share_held_by_largest": {str(n): round(float(held[n - 1]) / max(total, 1), 3) for n in (10, 50, 200) if n <= len(held)},
        "one_point_is": int(round(oz.sum() / 100)),
    }
    report["rows"] = [
        {"file": paths[i], "oz": int(oz[i]), "coreset_first": int(first[i]),
         "model_pick": None if model is None else int(model[i]), "best": int(best[i]), "best_list": int(best_column[i])}
        for i in order
    ]
    report["pool"] = list(pool)  # `best_list` of a row is an index into these
    return report


def write_report(path: Path, report: dict) -> None:
    """The figures indented, then one line per function row: readable, and small enough to keep in git."""
    figures = json.dumps({key: value for key, value in report.items() if key != "rows"}, indent=1)
    rows = ",\n".join("  " + json.dumps(row) for row in report["rows"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(figures[:-2] + ',\n "rows": [\n' + rows + "\n ]\n}\n")


def print_report(report: dict) -> None:
    hindsight = report["best_single_list_in_hindsight"]
    print(f"{report['functions']} functions, -Oz total {report['oz_total']}, {report['lists']} lists; at budget 1, under -Oz in total:")
    print(f"  the coreset's first list               {report['coreset_first']:6.2f}%")
    print(f"  the best single list in hindsight      {hindsight['gain']:6.2f}%  ({hindsight['passes'][:70]}…)")
    if report["model_first_pick"] is not None:
        print(f"  the model's first pick ({report['model_picks_found']} of {report['functions']} in the pool) {report['model_first_pick']:6.2f}%")
    print(f"  a perfect choice of one coreset list   {report['perfect_choice_of_one_coreset_list']:6.2f}%")
    print(f"  a perfect choice of one of all {report['lists']}      {report['perfect_choice_of_one_list']:6.2f}%")
    print(f"  the coreset's order at budgets 1/3/10/30 (for scale): {report['coreset_order']}")
    print(f"  {'group':<24} {'functions':>9} {'-Oz':>7} {'coreset 1st':>11} {'model':>7} {'perfect':>8}")
    for name, row in report["groups"].items():
        model_text = "-" if row["model_first_pick"] is None else f"{row['model_first_pick']:.2f}"
        print(f"  {name:<24} {row['functions']:>9} {row['oz_total']:>7} {row['coreset_first']:>11.2f} {model_text:>7} {row['perfect']:>8.2f}")
    headroom = report["room_over_coreset_first"]
    print(f"  room over the coreset's first list: {headroom['instructions']} instructions on {headroom['functions']} functions "
          f"(1 point = {headroom['one_point_is']}); the 10 / 50 / 200 functions with the most hold "
          + " / ".join(f"{share:.0%}" for share in headroom["share_held_by_largest"].values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "benchmark", help="a corpus folder (manifest.jsonl)")
    parser.add_argument("--labels", type=Path, default=ROOT / "data" / "benchmark-room-labels")
    parser.add_argument("--lists", type=Path, default=ROOT / "training" / "model" / "ranking-lists.txt")
    parser.add_argument("--coreset", type=Path, default=ROOT / "models" / "coreset.txt")
    parser.add_argument("--model", default=str(ROOT / "models" / "passpilot.gguf"), help="a ranking GGUF ('none': no model column)")
    parser.add_argument("--max-instructions", type=int, default=1_000_000, help="skip larger functions (as `training.labels`)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "ranking" / "room.json")
    args = parser.parse_args(argv)

    # Resumable: a rerun measures only what the folder lacks.
    command = [sys.executable, "-m", "training.labels", "--corpus", str(args.corpus), "--out", str(args.labels), "--lists",
               str(args.lists), "--coreset", str(args.coreset), "--max-instructions", str(args.max_instructions),
               "--workers", str(args.workers)]
    if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
        sys.exit(f"labelling failed: {' '.join(command)}")
    labels = LabelStore(args.labels).load()
    paths = [path for path, keep in zip(labels.paths, labels.usable()) if keep]
    picks = None if args.model == "none" else model_picks(Path(args.model), args.corpus, paths, labels.pool, args.threads)
    report = room(labels, read_coreset(args.coreset), picks)
    print_report(report)
    write_report(args.out, report)
    print(f"wrote {args.out} (rows: functions by room over the coreset's first list, largest first)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
