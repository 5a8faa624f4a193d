"""The coreset: K pass lists that together win most often, chosen on the training labels.

    python -m training.coreset --labels data/labels.jsonl --k 24 --out models/coreset.txt

1. From the autotuner's labels (every function measured on ~200 lists of a shared pool), keep the
   `--candidates` lists with the best mean gain under -Oz per function they were measured on.
2. Measure those candidates on every labelled function (the matrix is cached beside the labels).
3. Greedily pick the list that removes the most instructions beyond what the lists picked so far reach.

It also writes the model's training labels (`--model-labels`): for each function the smallest result of
the autotuner's best list and the coreset lists, a coreset list winning ties (even a tie with -Oz), so that
functions that are alike get the same answer and the model has something consistent to learn. With
`--extra N`, N more corpus functions are labelled with the coreset alone (its lists and -Oz, 17 `opt`
calls each instead of 200): the autotuner's knowledge, distilled into the coreset, reaches more functions.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from lsp_server.compiler import find_opt, load_vocabulary
from lsp_server.engine import CoresetSource, Optimizer, standalone_functions
from training.labels import corpus_entries

ROOT = Path(__file__).resolve().parents[1]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def promising_lists(labels: list[dict], pool: list[str], count: int, min_evaluations: int = 5) -> list[str]:
    gain: dict[str, float] = defaultdict(float)
    evaluations: dict[str, int] = defaultdict(int)
    for label in labels:
        for index, measured in label["counts"].items():
            evaluations[index] += 1
            gain[index] += max(0, label["oz"] - measured) / max(label["oz"], 1)
    ranked = sorted((i for i in evaluations if evaluations[i] >= min_evaluations), key=lambda i: -gain[i] / evaluations[i])
    chosen = [pool[int(i)] for i in ranked[:count]]
    # The single best lists found per function are candidates too: they may be rare but strong.
    for label in sorted(labels, key=lambda l: l["best"] - l["oz"]):
        if len(chosen) >= count * 2:
            break
        if label["best"] < label["oz"] and label["passes"] not in chosen:
            chosen.append(label["passes"])
    return chosen


def measure_matrix(labels: list[dict], lists: list[str], corpus: Path, jobs: int) -> dict[str, dict[str, int]]:
    opt = find_opt()
    optimizer = Optimizer(opt, sources=[CoresetSource(lists)], vocabulary=load_vocabulary(opt), jobs=jobs)
    matrix: dict[str, dict[str, int]] = {}
    try:
        for number, label in enumerate(labels, 1):
            function = standalone_functions((corpus / label["path"]).read_text())[1][0]
            result = optimizer.optimize(function, budget=len(lists), sources=["coreset"])
            matrix[label["path"]] = {m.passes: m.count for m in result.measurements if m.ok}
            if number % 50 == 0:
                print(f"coreset: measured {number}/{len(labels)} functions", flush=True)
    finally:
        optimizer.close()
    return matrix


def label_with_coreset(entries: list[dict], lists: list[str], corpus: Path, jobs: int) -> list[dict]:
    """The smallest of the coreset lists and -Oz for each function; earlier lists win ties, -Oz loses them."""
    opt = find_opt()
    optimizer = Optimizer(opt, sources=[CoresetSource(lists)], vocabulary=load_vocabulary(opt), jobs=jobs)
    labels = []
    try:
        for number, entry in enumerate(entries, 1):
            try:
                function = standalone_functions((corpus / entry["path"]).read_text())[1][0]
            except (OSError, IndexError, ValueError):
                continue
            result = optimizer.optimize(function, budget=len(lists), sources=["coreset"])
            if result.oz.count is None:
                continue
            counts = {m.passes: m.count for m in result.measurements[1:] if m.ok}
            options = [(count, rank, passes) for rank, passes in enumerate(lists) if (count := counts.get(passes)) is not None]
            options.append((result.oz.count, len(lists), "default<Oz>"))
            count, _, passes = min(options)
            labels.append({"path": str((corpus / entry["path"]).resolve()), "original": result.original,
                           "oz": result.oz.count, "best": count, "passes": passes})
            if number % 100 == 0:
                print(f"coreset: labelled {number}/{len(entries)} extra functions", flush=True)
    finally:
        optimizer.close()
    return labels


def greedy(labels: list[dict], matrix: dict[str, dict[str, int]], lists: list[str], k: int) -> list[tuple[str, int]]:
    current = {label["path"]: label["oz"] for label in labels}
    picked: list[tuple[str, int]] = []
    remaining = list(lists)
    for _ in range(k):
        def reduction(passes: str) -> int:
            return sum(max(0, current[p] - row[passes]) for p, row in matrix.items() if passes in row and p in current)

        best = max(remaining, key=reduction, default=None)
        if best is None or reduction(best) <= 0:
            break
        gained = reduction(best)
        picked.append((best, gained))
        remaining.remove(best)
        for path, row in matrix.items():
            if best in row and path in current:
                current[path] = min(current[path], row[best])
    return picked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, default=ROOT / "data" / "labels.jsonl")
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "corpus")
    parser.add_argument("--k", type=int, default=24)
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "coreset.txt")
    parser.add_argument("--model-labels", type=Path, default=ROOT / "data" / "model_labels.jsonl")
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--extra", type=int, default=0, help="also label N more corpus functions with the coreset")
    parser.add_argument("--extra-max-instructions", type=int, default=200)
    args = parser.parse_args(argv)

    labels = [label for label in read_jsonl(args.labels) if (args.corpus / label["path"]).is_file()]
    pool = json.loads(args.labels.with_suffix(".pool.json").read_text())
    candidates = promising_lists(labels, pool, args.candidates)
    matrix_path = args.labels.with_suffix(".matrix.json")
    cached = json.loads(matrix_path.read_text()) if matrix_path.exists() else {}
    if cached.get("lists") == candidates and set(cached.get("matrix", {})) >= {l["path"] for l in labels}:
        matrix = cached["matrix"]
    else:
        matrix = measure_matrix(labels, candidates, args.corpus, args.jobs)
        matrix_path.write_text(json.dumps({"lists": candidates, "matrix": matrix}))
    picked = greedy(labels, matrix, candidates, args.k)

    oz_total = sum(l["oz"] for l in labels)
    autotuner_total = sum(l["best"] for l in labels)
    coreset_total = oz_total - sum(g for _, g in picked)
    header = [
        "# PassPilot coreset: pass lists tried in order by the `coreset` source (one `-passes=` value per line).",
        f"# Chosen by `python -m training.coreset` on {len(labels)} training functions (never the benchmark):",
        f"# -Oz {oz_total} instructions, autotuner best ({max(len(l['counts']) for l in labels)} random lists each) "
        f"{autotuner_total}, these {len(picked)} lists {coreset_total}.",
        "# Each line's comment: instructions it removes beyond the lines above it.",
    ]
    lines = [f"{passes}  # -{gained}" for passes, gained in picked]
    args.out.write_text("\n".join(header + lines) + "\n")
    print("\n".join(header))
    for line in lines:
        print(line)

    order = {passes: rank for rank, (passes, _) in enumerate(picked)}
    with args.model_labels.open("w") as out:
        for label in labels:
            row = matrix.get(label["path"], {})
            options = [(count, rank, passes) for passes, rank in order.items() if (count := row.get(passes)) is not None]
            options.append((label["best"], len(order), label["passes"]))
            count, _, passes = min(options)
            record = {"path": str((args.corpus / label["path"]).resolve()), "original": label["original"], "oz": label["oz"]}
            out.write(json.dumps({**record, "best": count, "passes": passes}) + "\n")
        if args.extra:
            labelled = {label["path"] for label in labels}
            entries = [e for e in corpus_entries(args.corpus, args.extra_max_instructions, 0, seed=2) if e["path"] not in labelled]
            for record in label_with_coreset(entries[: args.extra], [p for p, _ in picked], args.corpus, args.jobs):
                out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
