"""Autotuner labels: the best pass list random search finds for each training function.

    python -m training.labels --corpus data/corpus --out data/labels.jsonl --calls 200 --limit 600

Every function gets `--calls` random lists (1-16 passes from the engine's search space, half of them
after a `default<Oz>` prefix) measured with the real `opt` in parallel, on top of -Oz. The lists are drawn
from one shared, seeded pool, so each list is measured on many functions and `training.coreset` can tell
which lists win often. Resumable: functions already in the output are skipped.

Each output line: {"path", "function", "pkg", "original", "oz", "best", "passes", "counts": {pool index: count}}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lsp_server.compiler import find_opt, load_vocabulary
from lsp_server.engine import Candidate, Optimizer, standalone_functions
from lsp_server.engine.sources import random_pass_list, search_space
from lsp_server.ir import InvalidIR, StandaloneFunction

ROOT = Path(__file__).resolve().parents[1]


class PoolSource:
    """The lists of the shared pool that this function was dealt."""

    name = "pool"

    def __init__(self, pool: list[str], calls: int, seed: int):
        self.pool = pool
        self.calls = calls
        self.seed = seed
        self.dealt: dict[str, list[int]] = {}

    def deal(self, function: StandaloneFunction) -> list[int]:
        digest = hashlib.sha256(f"{self.seed}\0{function.text}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "little"))
        return rng.sample(range(len(self.pool)), min(self.calls, len(self.pool)))

    def candidates(self, function: StandaloneFunction, limit: int) -> Iterator[Candidate]:
        for index in self.deal(function)[:limit]:
            yield Candidate(self.pool[index], f"pool:{index}")


def make_pool(size: int, seed: int, known: frozenset[str], extra: list[str]) -> list[str]:
    space = search_space(known)
    rng = random.Random(seed)
    pool = list(dict.fromkeys(extra))
    while len(pool) < size:
        candidate = random_pass_list(rng, space, 16)
        if candidate not in pool:
            pool.append(candidate)
    return pool


def corpus_entries(corpus: Path, max_instructions: int, limit: int, seed: int) -> list[dict]:
    entries = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    entries = [e for e in entries if 3 <= e.get("instructions", 0) <= max_instructions]
    # Round-robin over packages (each shuffled, the same every run) so no package dominates the labels.
    by_package: dict[str, list[dict]] = {}
    for entry in entries:
        by_package.setdefault(entry.get("pkg") or "", []).append(entry)
    rng = random.Random(seed)
    queues = [by_package[name] for name in sorted(by_package)]
    for queue in queues:
        rng.shuffle(queue)
    spread = [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]
    return spread[:limit] if limit else spread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "corpus")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "labels.jsonl")
    parser.add_argument("--calls", type=int, default=200, help="opt calls per function beyond -Oz")
    parser.add_argument("--pool", type=int, default=1000, help="size of the shared pool of random lists")
    parser.add_argument("--limit", type=int, default=0, help="label at most N functions (0: all)")
    parser.add_argument("--max-instructions", type=int, default=600, help="skip larger functions")
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    opt = find_opt()
    vocabulary = load_vocabulary(opt)
    hand_picked = [
        line.strip()
        for line in (ROOT / "models" / "coreset.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pool = make_pool(args.pool, args.seed, vocabulary.names, hand_picked)
    pool_path = args.out.with_suffix(".pool.json")
    if pool_path.exists() and json.loads(pool_path.read_text()) != pool:
        sys.exit(f"{pool_path} holds a different pool; use another --out or the same --pool/--seed")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pool_path.write_text(json.dumps(pool))

    done = set()
    if args.out.exists():
        done = {json.loads(line)["path"] for line in args.out.read_text().splitlines() if line.strip()}
    entries = [e for e in corpus_entries(args.corpus, args.max_instructions, args.limit, args.seed) if e["path"] not in done]
    source = PoolSource(pool, args.calls, args.seed)
    optimizer = Optimizer(opt, sources=[source], vocabulary=vocabulary, jobs=args.jobs)
    started = time.monotonic()
    improved = 0
    try:
        with args.out.open("a") as out:
            for number, entry in enumerate(entries, 1):
                try:
                    function = standalone_functions((args.corpus / entry["path"]).read_text())[1][0]
                except (OSError, InvalidIR, IndexError) as error:  # the corpus changed under us, or a bad module
                    print(f"labels: skipped {entry['path']}: {error}", flush=True)
                    continue
                result = optimizer.optimize(function, budget=args.calls, sources=["pool"])
                if result.best is None or result.oz.count is None:
                    continue
                counts = {m.source.split(":")[1]: m.count for m in result.measurements if m.source.startswith("pool:") and m.ok}
                improved += result.best.count < result.oz.count
                record = {
                    "path": entry["path"],
                    "function": entry.get("function", function.name),
                    "pkg": entry.get("pkg"),
                    "original": result.original,
                    "oz": result.oz.count,
                    "best": result.best.count,
                    "passes": result.best.passes,
                    "counts": counts,
                }
                out.write(json.dumps(record) + "\n")
                out.flush()
                if number % 25 == 0 or number == len(entries):
                    rate = number / (time.monotonic() - started)
                    print(f"labels: {number}/{len(entries)} functions, {improved} beat -Oz, {rate * (args.calls + 1):.0f} opt calls/s", flush=True)
    finally:
        optimizer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
