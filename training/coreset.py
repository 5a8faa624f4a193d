"""The coreset: K pool lists chosen greedily by marginal gain on the dense labels (`training.labels`).

    python -m training.coreset --labels data/labels --max-k 64              # print the curve, plot it
    python -m training.coreset --labels data/labels --max-k 64 --write      # and replace models/coreset.txt if it wins
    python -m training.coreset --labels data/labels-rank,data/labels-winners --max-k 69   # several folders, one pool

Labelled functions are split by their normalized hash: 80% choose the lists, 20% are held out (the same
split the model uses, `held_out`). Greedy: each step picks the pool list that removes the most
instructions beyond the best of -Oz and the lists already picked, summed over the choosing functions
(instructions, not percentages: the benchmark's figure is total instructions against -Oz). K is the
smallest size whose held-out gain reaches `--keep` (98%) of the best held-out gain up to `--max-k`.

The new coreset replaces `models/coreset.txt` (with `--write`) only if, on the held-out functions, its
first B lists are never worse than the current file's first B lists at B = 1, 3, 10 and the current
file's length, and better at the largest of these budgets.
The curve goes to `docs/bench/coreset-curve.json` and `docs/images/coreset-curve.png`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.labels import FAILED, UNKNOWN, LabelStore, merge_labels, read_coreset

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_PERCENT = 20
BIG = np.iinfo(np.int64).max // 4


def held_out(hashes: Sequence[str], percent: int = HELD_OUT_PERCENT) -> np.ndarray:
    """True for the functions held out of every choice (coreset and model): a fixed share by hash."""
    return np.asarray([int(h[:8], 16) % 100 < percent for h in hashes], dtype=bool)


def as_costs(counts: np.ndarray) -> np.ndarray:
    """int64 counts with failures as a huge count, so that a failed list is never the best."""
    costs = counts.astype(np.int64)
    costs[counts == FAILED] = BIG
    return costs


def greedy(costs: np.ndarray, oz: np.ndarray, k: int) -> list[tuple[int, int]]:
    """(column, instructions it removes beyond -Oz and the columns before it), at most `k` of them."""
    current = oz.astype(np.int64).copy()
    picked: list[tuple[int, int]] = []
    for _ in range(k):
        reduction = np.maximum(current[:, None] - costs, 0).sum(axis=0)
        for column, _ in picked:
            reduction[column] = -1
        best = int(reduction.argmax())
        if reduction[best] <= 0:
            break
        picked.append((best, int(reduction[best])))
        current = np.minimum(current, costs[:, best])
    return picked


def gain_curve(costs: np.ndarray, oz: np.ndarray, columns: Sequence[int]) -> list[float]:
    """Gain under -Oz (percent of total instructions) of the first 1, 2, ... columns, -Oz always measured."""
    current = oz.astype(np.int64).copy()
    total = max(int(oz.sum()), 1)
    curve = []
    for column in columns:
        current = np.minimum(current, costs[:, column])
        curve.append(100.0 * (total - int(current.sum())) / total)
    return curve


def choose_k(curve: Sequence[float], keep: float) -> int:
    if not curve:
        return 0
    target = keep * max(curve)
    return next(k for k, gain in enumerate(curve, 1) if gain >= target)


def write_greedy_file(path: Path, header: Sequence[str], picked: Sequence[tuple[str, int]]) -> None:
    """A shipped file of greedy choices (coreset lists, refinement edits): the header, then one choice per
    line with the instructions it removed as a comment."""
    lines = [*header, "# Each line's comment: instructions it removes on the choosing functions beyond the lines above it.",
             *(f"{choice}  # -{removed}" for choice, removed in picked)]
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def plot(path: Path, train: Sequence[float], held: Sequence[float], current: Sequence[float], k: int, functions: tuple[int, int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    ks = range(1, len(train) + 1)
    axes.plot(ks, train, label=f"greedy coreset, choosing functions ({functions[0]})", color="#1f77b4")
    axes.plot(ks, held, label=f"greedy coreset, held-out functions ({functions[1]})", color="#d62728")
    if current:
        axes.plot(range(1, len(current) + 1), current, "--", label="current models/coreset.txt, held-out", color="#7f7f7f")
    axes.axvline(k, color="#2ca02c", linestyle=":", label=f"chosen K = {k}")
    axes.set_xlabel("K (lists compiled, beyond -Oz)")
    axes.set_ylabel("instructions under -Oz (%)")
    axes.set_title("Coreset: gain against K")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def complete_rows(folders: Sequence[Path]) -> tuple[list[str], list[tuple[str, dict]]]:
    """(pool, [(hash, merged row)]) of the functions measured under every list of the folders' pools
    together: e.g. the whole corpus labelled under one set of lists in one folder and under more in another."""
    stores = [LabelStore(folder).load() for folder in folders]
    pool = list(dict.fromkeys(p for labels in stores for p in labels.pool))
    rows = [(h, row) for h, row in merge_labels(stores, pool).items() if (row["counts"] != UNKNOWN).all()]
    if not rows:
        raise SystemExit(f"no function is labelled under every list of {', '.join(map(str, folders))}")
    return pool, rows


def read_labels(folders: Sequence[Path]) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(pool, costs, -Oz counts, hashes) of `complete_rows`."""
    pool, rows = complete_rows(folders)
    return (pool, as_costs(np.stack([row["counts"] for _, row in rows])), np.asarray([row["oz"] for _, row in rows], dtype=np.int64),
            [h for h, _ in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", default=str(ROOT / "data" / "labels"),
                        help="a label folder, or several (comma-separated) whose pools together label the same functions")
    parser.add_argument("--max-k", type=int, default=64)
    parser.add_argument("--keep", type=float, default=0.98, help="K reaches this share of the best held-out gain")
    parser.add_argument("--current", type=Path, default=ROOT / "models" / "coreset.txt")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "coreset.txt")
    parser.add_argument("--write", action="store_true", help="write --out when the new coreset wins on held-out functions")
    parser.add_argument("--curve", type=Path, default=ROOT / "docs" / "bench" / "coreset-curve.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "images" / "coreset-curve.png")
    args = parser.parse_args(argv)

    pool, costs, oz, hashes = read_labels([Path(folder) for folder in str(args.labels).split(",")])
    held = held_out(hashes)
    choose = ~held
    if choose.sum() == 0 or held.sum() == 0:
        raise SystemExit("too few labelled functions to split into choosing and held-out sets")

    picked = greedy(costs[choose], oz[choose], args.max_k)
    columns = [column for column, _ in picked]
    train_curve = gain_curve(costs[choose], oz[choose], columns)
    held_curve = gain_curve(costs[held], oz[held], columns)
    k = choose_k(held_curve, args.keep)

    current_lists = read_coreset(args.current)
    current_columns = [pool.index(p) for p in current_lists if p in pool]
    current_curve = gain_curve(costs[held], oz[held], current_columns)
    pool_best = 100.0 * (oz[held].sum() - np.minimum(costs[held].min(axis=1), oz[held]).sum()) / max(oz[held].sum(), 1)

    print(f"coreset: {int(choose.sum())} choosing functions, {int(held.sum())} held out; pool of {len(pool)} lists "
          f"(held-out best of the whole pool: {pool_best:.2f}% under -Oz)")
    print(f"{'K':>3}  {'choosing %':>10}  {'held-out %':>10}  {'current file, held-out %':>24}  removes  list")
    for index, (column, removed) in enumerate(picked):
        current = f"{current_curve[index]:.2f}" if index < len(current_curve) else ""
        print(f"{index + 1:>3}  {train_curve[index]:>10.2f}  {held_curve[index]:>10.2f}  {current:>24}  {removed:>7}  {pool[column]}")
    print(f"chosen K = {k} (smallest K reaching {args.keep:.0%} of the best held-out gain, {max(held_curve):.2f}%)")

    budgets = sorted({1, 3, 10, len(current_columns)})
    comparison = {}
    for budget in budgets:
        new = held_curve[min(budget, k) - 1]
        old = current_curve[min(budget, len(current_curve)) - 1] if current_curve else 0.0
        comparison[budget] = {"new": round(new, 3), "current": round(old, 3)}
        print(f"held-out, budget {budget:>2}: new coreset {new:.2f}%, current file {old:.2f}%")
    wins = all(c["new"] >= c["current"] for c in comparison.values()) and any(c["new"] > c["current"] for c in comparison.values())
    print("the new coreset " + ("beats" if wins else "does NOT beat") + " the current file on held-out functions "
          f"(never worse at budgets {', '.join(map(str, budgets))}, better at one of them at least)")

    args.curve.parent.mkdir(parents=True, exist_ok=True)
    args.curve.write_text(json.dumps({
        "labels": str(args.labels), "pool": len(pool), "choosing_functions": int(choose.sum()),
        "held_out_functions": int(held.sum()), "k": k, "keep": args.keep,
        "lists": [pool[c] for c in columns], "removed": [r for _, r in picked],
        "choosing_gain_percent": [round(g, 3) for g in train_curve], "held_out_gain_percent": [round(g, 3) for g in held_curve],
        "current_held_out_gain_percent": [round(g, 3) for g in current_curve],
        "held_out_pool_best_percent": round(float(pool_best), 3), "comparison": comparison, "new_wins": wins,
    }, indent=1) + "\n")
    plot(args.plot, train_curve, held_curve, current_curve, k, (int(choose.sum()), int(held.sum())))
    print(f"curve: {args.curve}, plot: {args.plot}")

    if args.write and wins:
        oz_total = int(oz.sum())
        write_greedy_file(args.out, [
            "# PassPilot coreset: pass lists tried in order by the `coreset` source (one `-passes=` value per line).",
            f"# Chosen by `python -m training.coreset` on the dense labels of {int(choose.sum())} training functions "
            f"(never the benchmark), each measured under a pool of {len(pool)} lists;",
            f"# on {int(held.sum())} held-out training functions the {k} lists are {held_curve[k - 1]:.2f}% under -Oz "
            f"(the whole pool: {pool_best:.2f}%). -Oz total of the choosing functions: {oz_total - int(oz[held].sum())}.",
        ], [(pool[column], removed) for column, removed in picked[:k]])
    elif args.write:
        print(f"{args.out} left as it is")
    return 0


if __name__ == "__main__":
    sys.exit(main())
