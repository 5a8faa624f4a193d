"""Dense labels: every training function measured under ONE shared pool of pass lists, on Dask.

    # a labelled subset (resumable: a rerun skips finished shards and labels what is missing)
    python -m training.labels --corpus data/corpus --out data/labels --limit 3000
    # the full corpus, on a cluster (every worker needs this repository, its venv and LLVM 22)
    python -m training.labels --corpus data/corpus --out data/labels --scheduler tcp://HOST:8786
    # what is there
    python -m training.labels --out data/labels --summary
    # a cheap second pass for the ranking model: more functions, under the coreset's lists only
    python -m training.labels --out data/labels-coreset --lists models/coreset.txt --seed 2

The pool (built once, then frozen; its SHA-256 is in the index) holds, in this order:
  * the default levels `default<O1|O2|O3|Os|Oz>`;
  * the shipped coreset (`models/coreset.txt`);
  * per-function winners of local search: on `--seed-functions` training functions, hill climbing
    (replace/insert/delete/swap one pass, `--local-steps` steps) from the best level or coreset list;
    every list that beat its start joins the pool;
  * valid random pipelines (`lsp_server.engine.sources.random_pass_list`) up to `--pool-size`.
Every list passes `PassVocabulary.check` before it joins.

Then every function (3 to `--max-instructions` instructions, round-robin over the packages so that a
`--limit` subset spreads over all of them and csmith) is measured under every pool list with the compiler
backend (`--backend auto`: in-process libLLVM workers when they load, else `opt` processes). Work is cut
into shards of `--shard-size` functions; a shard is a Dask task that ships the functions' text, so the
workers need no shared disk. Each finished shard is written atomically as `shards/NNNNN.npz`:

    counts        int32 (functions, pool): instructions after each list; -1 when it failed
    original      int32 (functions,): instructions as written
    hash, path, pkg                     the corpus manifest's normalized hash, path and package

and `index.json` keeps the pool, the compiler identity (backend, LLVM version, library) and the shards.
A rerun refuses a different pool or LLVM version in the same folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin

from lsp_server.compiler import PassListError, PassVocabulary, find_opt, load_vocabulary, open_backend
from lsp_server.compiler.passes import nested_pipeline, split_pipeline as pipeline_elements
from lsp_server.engine import Candidate, Optimizer, standalone_functions
from lsp_server.engine.sources import OZ, CoresetSource, random_pass_list, search_space
from lsp_server.ir import InvalidIR

ROOT = Path(__file__).resolve().parents[1]
LEVELS = ("default<O1>", "default<O2>", "default<O3>", "default<Os>", OZ)
FORMAT = 1
FAILED = -1
UNKNOWN = FAILED - 1  # a list this function was not labelled under (its folder's pool lacks it)
PLUGIN_NAME = "passpilot-compiler"

log = logging.getLogger("training.labels")


# -------------------------------------------------------------------------------------------- corpus


def build_entries(corpus: Path, benchmark: Path) -> list[dict]:
    """Entries of the packages already built under `<corpus>/.build/` (before `training.corpus dedupe` ran):
    one per normalized hash, without the benchmark's hashes. Paths point into `.build`; rows are keyed by
    hash, so labels made from them stay valid for the deduplicated corpus."""
    excluded = set()
    if (benchmark / "manifest.jsonl").exists():
        excluded = {json.loads(line)["hash"] for line in (benchmark / "manifest.jsonl").read_text().splitlines() if line.strip()}
    entries, seen = [], set(excluded)
    for build in sorted((corpus / ".build").glob("*/build.json")):
        package = build.parent
        for unit in sorted((package / "units").glob("*.json")):
            for record in json.loads(unit.read_text()).get("functions", []):
                if record["hash"] in seen:
                    continue
                seen.add(record["hash"])
                entries.append({"pkg": package.name, "function": record["function"], "hash": record["hash"],
                                "instructions": record["instructions"], "path": f".build/{package.name}/funcs/{record['file']}"})
    return entries


def corpus_entries(corpus: Path, max_instructions: int, limit: int, seed: int, *, from_build: Path | None = None) -> list[dict]:
    """Manifest entries (or, with `from_build` naming the benchmark, `build_entries`), round-robin over
    packages (each shuffled the same way every run)."""
    if from_build is not None:
        entries = build_entries(corpus, from_build)
    else:
        entries = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    entries = [e for e in entries if 3 <= e.get("instructions", 0) <= max_instructions]
    by_package: dict[str, list[dict]] = {}
    for entry in entries:
        by_package.setdefault(entry.get("pkg") or "", []).append(entry)
    rng = random.Random(seed)
    queues = [sorted(by_package[name], key=lambda e: e["path"]) for name in sorted(by_package)]
    for queue in queues:
        rng.shuffle(queue)
    spread = [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]
    return spread[:limit] if limit else spread


# ---------------------------------------------------------------------------------------------- pool


@dataclass(frozen=True)
class PoolList:
    passes: str
    kind: str  # "level" | "coreset" | "local" | "random"


def pool_sha(pool: Sequence[PoolList]) -> str:
    return hashlib.sha256("\n".join(p.passes for p in pool).encode()).hexdigest()


def add_valid(pool: list[PoolList], seen: set[str], vocabulary: PassVocabulary, passes: str, kind: str) -> bool:
    """Append `passes` when it is a valid pipeline that is not in the pool yet (by its checked form)."""
    try:
        normalized = vocabulary.check(passes)
    except PassListError:
        return False
    if normalized in seen:
        return False
    seen.add(normalized)
    pool.append(PoolList(passes, kind))
    return True


def build_pool(vocabulary: PassVocabulary, coreset: Sequence[str], winners: Sequence[str], size: int, seed: int) -> list[PoolList]:
    pool: list[PoolList] = []
    seen: set[str] = set()
    for passes in LEVELS:
        add_valid(pool, seen, vocabulary, passes, "level")
    for passes in coreset:
        add_valid(pool, seen, vocabulary, passes, "coreset")
    for passes in winners:
        add_valid(pool, seen, vocabulary, passes, "local")
    space = search_space(vocabulary.names)
    rng = random.Random(seed)
    attempts = 0
    while len(pool) < size and attempts < size * 50:
        attempts += 1
        add_valid(pool, seen, vocabulary, random_pass_list(rng, space, 16), "random")
    return pool


def render(items: Sequence[str]) -> str:
    """A flat item list as a pipeline opt accepts: after a `default<..>` level as it is, else in `module(...)`."""
    if items and items[0].startswith("default<"):
        return ",".join(items)
    return f"module({','.join(items)})"


def mutate(items: list[str], space: Sequence[str], rng: random.Random) -> list[str]:
    """One random edit: replace, insert, delete or swap a pass (never the leading level)."""
    items = list(items)
    first = 1 if items and items[0].startswith("default<") else 0
    movable = len(items) - first
    operation = rng.choice(("replace", "insert", "delete", "swap") if movable >= 2 else ("replace", "insert"))
    if operation == "insert" or movable == 0:
        items.insert(rng.randint(first, len(items)), rng.choice(space))
    elif operation == "replace":
        items[rng.randint(first, len(items) - 1)] = rng.choice(space)
    elif operation == "delete":
        del items[rng.randint(first, len(items) - 1)]
    else:
        at = rng.randint(first, len(items) - 2)
        items[at], items[at + 1] = items[at + 1], items[at]
    return items


def split_pipeline(passes: str) -> list[str]:
    """The flat items of a pool list (`render` inverted): the elements inside one outer `module(...)`."""
    elements = pipeline_elements(passes)
    nested = nested_pipeline(elements[0]) if len(elements) == 1 else None
    if nested is not None and nested[0] == "module":
        return pipeline_elements(nested[1])
    return elements


# ---------------------------------------------------------------------------------- worker side (Dask)


class CompilerPlugin(WorkerPlugin):
    """A Dask worker plugin: one compiler backend (one libLLVM worker process or `opt`) per Dask worker."""

    name = PLUGIN_NAME

    def __init__(self, backend: str, opt_path: str = ""):
        self.backend = backend
        self.opt_path = opt_path
        self.optimizer: Optimizer | None = None

    def setup(self, worker=None) -> None:
        opt = find_opt(self.opt_path or None)
        self.optimizer = Optimizer(opt, vocabulary=load_vocabulary(opt), jobs=1, backend=open_backend(self.backend, opt, workers=1))

    def teardown(self, worker=None) -> None:
        if self.optimizer is not None:
            self.optimizer.close()
            self.optimizer = None

    def identity(self) -> dict:
        assert self.optimizer is not None
        identity = self.optimizer.backend.identity
        return {"backend": identity.name, "version": identity.version, "path": identity.path, "opt_version": self.optimizer.opt.version}


def _worker_optimizer() -> tuple[Optimizer, dict]:
    from distributed import get_worker

    plugin = get_worker().plugins[PLUGIN_NAME]
    return plugin.optimizer, plugin.identity()


def _function(text: str):
    try:
        return standalone_functions(text)[1][0]
    except (InvalidIR, IndexError, ValueError):
        return None


def measure_counts(optimizer: Optimizer, text: str, pool: Sequence[str]) -> tuple[int, np.ndarray]:
    """(instructions as written, count under each pool list; FAILED where a list failed) of one function."""
    from lsp_server.ir import count_instructions

    counts = np.full(len(pool), FAILED, dtype=np.int32)
    function = _function(text)
    if function is None:
        return FAILED, counts
    for index, passes in enumerate(pool):
        measured = optimizer.measure(function, Candidate(passes, "pool"))
        if measured.ok:
            counts[index] = measured.count
    return count_instructions(function.text), counts


def label_shard(texts: Sequence[str], pool: Sequence[str]) -> dict:
    """A Dask task: the counts of a few functions under every pool list."""
    optimizer, identity = _worker_optimizer()
    started = time.perf_counter()
    rows = [measure_counts(optimizer, text, pool) for text in texts]
    return {
        "original": np.asarray([r[0] for r in rows], dtype=np.int32),
        "counts": np.stack([r[1] for r in rows]) if rows else np.zeros((0, len(pool)), dtype=np.int32),
        "seconds": time.perf_counter() - started,
        "compiler": identity,
    }


def retry_shard(texts: Sequence[str], lists: Sequence[Sequence[str]]) -> dict:
    """A Dask task: each function measured again under its failed lists only (`lists[i]` for `texts[i]`)."""
    optimizer, identity = _worker_optimizer()
    return {"counts": [measure_counts(optimizer, text, passes)[1] for text, passes in zip(texts, lists)], "compiler": identity}


def local_search(optimizer: Optimizer, text: str, starts: Sequence[str], space: Sequence[str], steps: int, seed: int) -> dict:
    """Hill climbing on one function from the best of `starts`: keep an edit when it is smaller (or as small
    and shorter). Returns the start, the winner and their counts."""
    function = _function(text)
    if function is None:
        return {"winner": None}
    measured = [(optimizer.measure(function, Candidate(p, "start")), p) for p in starts]
    valid = [(m.count, len(split_pipeline(p)), p) for m, p in measured if m.ok]
    if not valid:
        return {"winner": None}
    start_count, _, start = min(valid)
    best_items, best_count = split_pipeline(start), start_count
    digest = hashlib.sha256(f"{seed}\0{function.text}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "little"))
    for _ in range(steps):
        items = mutate(best_items, space, rng)
        if not items:
            continue
        result = optimizer.measure(function, Candidate(render(items), "local"))
        if result.ok and (result.count < best_count or (result.count == best_count and len(items) < len(best_items))):
            best_items, best_count = items, result.count
    return {"start": start, "start_count": start_count, "winner": render(best_items), "count": best_count}


def search_task(text: str, starts: Sequence[str], steps: int, seed: int) -> dict:
    optimizer, _ = _worker_optimizer()
    space = search_space(optimizer.vocabulary.names)
    return local_search(optimizer, text, starts, space, steps, seed)


def deep_task(text: str, starts: Sequence[str], calls: int, seed: int) -> dict:
    """The engine's deep search (`lsp_server.engine.deep`) on one function, bounded by calls (reproducible),
    starting from `starts`; its winner when it beats the best start."""
    from lsp_server.engine.deep import DeepOptions, DeepSearch

    worker_optimizer, _ = _worker_optimizer()
    function = _function(text)
    if function is None:
        return {"winner": None}
    # The worker's backend, with the starts as the coreset the search seeds from. Not closed here: the worker's
    # optimizer owns the backend, and the deep search measures through `measure`, which starts no thread.
    optimizer = Optimizer(worker_optimizer.opt, sources=[CoresetSource(list(starts))], vocabulary=worker_optimizer.vocabulary, jobs=1,
                          backend=worker_optimizer.backend)
    with DeepSearch(optimizer, DeepOptions(seconds=3600.0, calls=calls, seed=seed, sources=("coreset",))) as search:
        result = search.search(function)
    starts_best = min((m.count for m in result.measurements if m.ok and m.source in ("coreset", "oz")), default=None)
    if result.best is None or starts_best is None:
        return {"winner": None}
    return {"start_count": starts_best, "winner": result.best.passes, "count": result.best.count}


# -------------------------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class Labels:
    """All finished shards of a label folder, concatenated (rows in the order the shards finished)."""

    pool: list[str]
    kinds: list[str]
    counts: np.ndarray  # int32 (functions, pool); FAILED where a list failed
    original: np.ndarray  # int32 (functions,)
    hashes: list[str]
    paths: list[str]
    pkgs: list[str]
    compiler: dict

    @property
    def oz_column(self) -> int:
        return self.pool.index(OZ)

    @property
    def oz(self) -> np.ndarray:
        return self.counts[:, self.oz_column]

    def usable(self) -> np.ndarray:
        """Rows worth learning from: the function parsed and -Oz succeeded."""
        return (self.original > 0) & (self.oz > 0)

    def best(self) -> np.ndarray:
        """Smallest count per function over the pool (-Oz included)."""
        masked = np.where(self.counts == FAILED, np.iinfo(np.int32).max, self.counts)
        return masked.min(axis=1)


class LabelStore:
    """`index.json` + `shards/NNNNN.npz` in one folder; shards are written atomically."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.index_path = directory / "index.json"
        self.shard_dir = directory / "shards"

    def index(self) -> dict | None:
        return json.loads(self.index_path.read_text()) if self.index_path.exists() else None

    def create(self, pool: Sequence[PoolList], compiler: dict, settings: dict) -> dict:
        index = {
            "format": FORMAT,
            "pool_sha": pool_sha(pool),
            "pool": [{"passes": p.passes, "kind": p.kind} for p in pool],
            "compiler": compiler,
            "settings": settings,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "shards": [],
        }
        self._write_index(index)
        return index

    def check(self, index: dict, compiler: dict) -> None:
        """Refuse to mix labels of another LLVM version into this folder."""
        if index["compiler"]["version"] != compiler["version"]:
            raise SystemExit(
                f"{self.directory} holds labels measured with LLVM {index['compiler']['version']}; this worker has "
                f"{compiler['version']}: use another --out"
            )

    def labelled_hashes(self) -> set[str]:
        index = self.index() or {"shards": []}
        hashes: set[str] = set()
        for shard in index["shards"]:
            path = self.shard_dir / shard["file"]
            if path.exists():
                with np.load(path) as data:
                    hashes.update(str(h) for h in data["hash"])
        return hashes

    def next_shard_number(self) -> int:
        index = self.index() or {"shards": []}
        return 1 + max((int(s["file"].split(".")[0]) for s in index["shards"]), default=-1)

    def write_shard(self, number: int, entries: Sequence[dict], result: dict) -> dict:
        name = f"{number:05d}.npz"
        self.save_shard(name, {
            "counts": result["counts"].astype(np.int32),
            "original": result["original"].astype(np.int32),
            "hash": np.asarray([e["hash"] for e in entries], dtype=str),
            "path": np.asarray([e["path"] for e in entries], dtype=str),
            "pkg": np.asarray([e.get("pkg") or "" for e in entries], dtype=str),
        })
        index = self.index()
        assert index is not None
        record = {"file": name, "functions": len(entries), "seconds": round(result["seconds"], 3), "compiler": result["compiler"]["backend"]}
        index["shards"].append(record)
        self._write_index(index)
        return record

    def save_shard(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Write (or replace) one shard file atomically: a reader sees the old file or the new one."""
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.shard_dir / f".{name}.tmp.npz"
        np.savez_compressed(temporary, **arrays)
        temporary.replace(self.shard_dir / name)

    def load(self) -> Labels:
        index = self.index()
        if index is None:
            raise FileNotFoundError(f"no labels in {self.directory} (index.json is missing)")
        parts = []
        for shard in index["shards"]:
            with np.load(self.shard_dir / shard["file"]) as data:
                parts.append({key: data[key] for key in ("counts", "original", "hash", "path", "pkg")})
        width = len(index["pool"])

        def joined(key: str, dtype, shape=(0,)) -> np.ndarray:
            return np.concatenate([p[key] for p in parts]) if parts else np.zeros(shape, dtype=dtype)

        return Labels(
            pool=[p["passes"] for p in index["pool"]],
            kinds=[p["kind"] for p in index["pool"]],
            counts=joined("counts", np.int32, (0, width)),
            original=joined("original", np.int32),
            hashes=[str(h) for h in joined("hash", str)],
            paths=[str(p) for p in joined("path", str)],
            pkgs=[str(p) for p in joined("pkg", str)],
            compiler=index["compiler"],
        )

    def _write_index(self, index: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.index_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(index, indent=1) + "\n")
        temporary.replace(self.index_path)


# --------------------------------------------------------------------------------------- the cluster


def open_client(scheduler: str, workers: int):
    """A Dask client: on the cluster at `scheduler`, else on a local cluster of `workers` processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.WARNING
    )
    return Client(cluster)


def close_client(client) -> None:
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


def read_texts(corpus: Path, entries: Iterable[dict]) -> list[str]:
    return [(corpus / e["path"]).read_text(errors="replace") for e in entries]


def find_winners(client, corpus: Path, entries: Sequence[dict], starts: Sequence[str], steps: int, seed: int, deep_calls: int = 0) -> list[dict]:
    from distributed import as_completed
    from tqdm import tqdm

    task, effort = (deep_task, deep_calls) if deep_calls else (search_task, steps)
    futures = [client.submit(task, text, list(starts), effort, seed, pure=False) for text in read_texts(corpus, entries)]
    found = []
    for future in tqdm(as_completed(futures), total=len(futures), desc="local search", unit="fn", file=sys.stderr):
        found.append(future.result())
    return found


def label(client, store: LabelStore, corpus: Path, entries: Sequence[dict], pool: Sequence[str], shard_size: int, expected_version: str) -> dict:
    """Submit one task per shard of `entries`, write each shard as it finishes; returns throughput figures."""
    from distributed import as_completed
    from tqdm import tqdm

    started = time.perf_counter()
    pool_future = client.scatter(list(pool), broadcast=True)
    number = store.next_shard_number()
    pending = {}
    for offset in range(0, len(entries), shard_size):
        chunk = list(entries[offset : offset + shard_size])
        future = client.submit(label_shard, read_texts(corpus, chunk), pool_future, pure=False)
        pending[future] = (number, chunk)
        number += 1
    done_functions = 0
    bar = tqdm(total=len(entries), desc="labels", unit="fn", file=sys.stderr, smoothing=0.05)
    try:
        for future in as_completed(pending):
            shard_number, chunk = pending.pop(future)
            result = future.result()
            if result["compiler"]["version"] != expected_version:
                raise SystemExit(f"a worker runs LLVM {result['compiler']['version']}, the labels are {expected_version}")
            store.write_shard(shard_number, chunk, result)
            done_functions += len(chunk)
            bar.update(len(chunk))
    finally:
        bar.close()
        for future in pending:
            future.cancel()
    seconds = time.perf_counter() - started
    return {"functions": done_functions, "seconds": round(seconds, 2), "functions_per_s": round(done_functions / seconds, 3) if seconds else 0.0}


def retry_failed(client, store: LabelStore, index: dict, corpus: Path, expected_version: str) -> dict:
    """Measure every failed (function, list) pair of the folder again and rewrite the shards that change.

    A failure is not always the list's fault: a worker killed under load, or a measurement since fixed
    (InstCombine's fixpoint check, turned off by `PassVocabulary.check`). Rows whose function did not
    parse (`original` is FAILED) are left alone. Each shard is rewritten atomically, so an interrupted
    run loses nothing; a rerun retries what still fails."""
    from distributed import as_completed
    from tqdm import tqdm

    pool = [p["passes"] for p in index["pool"]]
    pending = {}
    pairs = 0
    for shard in index["shards"]:
        path = store.shard_dir / shard["file"]
        with np.load(path) as data:
            counts, original, paths = data["counts"], data["original"], [str(p) for p in data["path"]]
        rows = [r for r in range(len(counts)) if original[r] != FAILED and (counts[r] == FAILED).any()]
        if not rows:
            continue
        columns = [np.flatnonzero(counts[r] == FAILED).tolist() for r in rows]
        texts = [(corpus / paths[r]).read_text(errors="replace") for r in rows]
        future = client.submit(retry_shard, texts, [[pool[c] for c in cs] for cs in columns], pure=False)
        pending[future] = (path, rows, columns)
        pairs += sum(map(len, columns))
    started = time.perf_counter()
    recovered = 0
    with tqdm(total=pairs, desc="retry", unit="run", file=sys.stderr) as bar:
        for future in as_completed(pending):
            path, rows, columns = pending.pop(future)
            result = future.result()
            if result["compiler"]["version"] != expected_version:
                raise SystemExit(f"a worker runs LLVM {result['compiler']['version']}, the labels are {expected_version}")
            with np.load(path) as data:
                arrays = {key: data[key] for key in data.files}
            for row, cs, measured in zip(rows, columns, result["counts"]):
                arrays["counts"][row, cs] = measured
                recovered += sum(1 for value in measured if value != FAILED)
            store.save_shard(path.name, arrays)
            bar.update(sum(map(len, columns)))
    return {"failed": pairs, "recovered": recovered, "seconds": round(time.perf_counter() - started, 2)}


def cluster_cores(client) -> int:
    return sum(worker["nthreads"] for worker in client.scheduler_info()["workers"].values())


def read_coreset(path: Path) -> list[str]:
    """The lists of a coreset file, or of a coreset curve (`training.coreset`'s JSON: all its greedy lists)."""
    if path.suffix == ".json":
        return list(json.loads(path.read_text())["lists"])
    return CoresetSource.from_file(path).pass_lists


def summary(store: LabelStore) -> dict:
    labels = store.load()
    usable = labels.usable()
    oz, best = labels.oz[usable].astype(np.int64), labels.best()[usable].astype(np.int64)
    kinds = {kind: labels.kinds.count(kind) for kind in dict.fromkeys(labels.kinds)}
    packages: dict[str, int] = {}
    for pkg in np.asarray(labels.pkgs)[usable]:
        packages[str(pkg)] = packages.get(str(pkg), 0) + 1
    failed = labels.counts[usable] == FAILED
    return {
        "functions": int(len(labels.hashes)),
        "usable": int(usable.sum()),
        "pool": len(labels.pool),
        "pool_kinds": kinds,
        "compiler": labels.compiler,
        "oz_total": int(oz.sum()),
        "pool_best_total": int(best.sum()),
        "pool_best_gain_percent": round(100.0 * (oz.sum() - best.sum()) / max(oz.sum(), 1), 3),
        "functions_beating_oz": int((best < oz).sum()),
        "failed_share": round(float(failed.mean()), 5) if failed.size else 0.0,
        "packages": packages,
    }


def merge_labels(stores: Sequence, lists: Sequence[str]) -> dict[str, dict]:
    """One row per function (by normalized hash) over several label folders: its count under each of `lists`
    from whichever folder measured it (the first one that did), UNKNOWN where none did. Folders may have
    different pools: e.g. the whole corpus under the coreset's lists, and a subset under a wider pool."""
    merged: dict[str, dict] = {}
    for labels in stores:
        columns = [labels.pool.index(p) if p in labels.pool else -1 for p in lists]
        if all(c < 0 for c in columns):
            continue
        for row in np.flatnonzero(labels.usable()):
            values = np.asarray([labels.counts[row, c] if c >= 0 else UNKNOWN for c in columns], dtype=np.int32)
            entry = merged.get(labels.hashes[row])
            if entry is None:
                merged[labels.hashes[row]] = {"path": labels.paths[row], "pkg": labels.pkgs[row], "oz": int(labels.oz[row]),
                                              "original": int(labels.original[row]), "counts": values}
            else:
                fill = (entry["counts"] == UNKNOWN) & (values != UNKNOWN)
                entry["counts"][fill] = values[fill]
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "corpus")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "labels")
    parser.add_argument("--limit", type=int, default=0, help="label the first N functions of the package round-robin (0: all)")
    parser.add_argument("--max-instructions", type=int, default=1000, help="skip larger functions")
    parser.add_argument("--pool-size", type=int, default=512)
    parser.add_argument("--coreset", type=Path, default=ROOT / "models" / "coreset.txt", help="lists that join the pool")
    parser.add_argument("--seed-functions", type=int, default=64, help="functions whose local-search winners join the pool")
    parser.add_argument("--local-steps", type=int, default=60, help="hill-climbing steps per seed function")
    parser.add_argument("--deep-calls", type=int, default=0,
                        help="instead of hill climbing: the engine's deep search on each seed function, bounded by this many calls")
    parser.add_argument("--seed-min-instructions", type=int, default=0, help="seed functions have at least this many instructions")
    parser.add_argument("--shard-size", type=int, default=16, help="functions per task and per shard file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default="auto", choices=("auto", "opt", "libllvm"))
    parser.add_argument("--opt", default="", help="the opt executable (default: PASSPILOT_OPT, else newest on PATH)")
    parser.add_argument("--scheduler", default="", help="address of a running Dask scheduler (tcp://host:8786); default: a local cluster")
    parser.add_argument("--workers", type=int, default=2, help="local cluster: worker processes (one core each)")
    parser.add_argument("--lists", type=Path, default=None,
                        help="a cheap pass: the pool is the levels plus the lists of this file (coreset format), no search "
                             "(e.g. more functions for the ranking model, labelled under its lists only)")
    parser.add_argument("--from-build", action="store_true",
                        help="label the packages built so far under <corpus>/.build (before dedupe), without benchmark functions")
    parser.add_argument("--benchmark", type=Path, default=ROOT / "data" / "benchmark", help="with --from-build: hashes to leave out")
    parser.add_argument("--summary", action="store_true", help="print what the folder holds and exit")
    parser.add_argument("--retry-failed", action="store_true",
                        help="measure every failed (function, list) pair of --out again (after a measurement fix), label nothing new")
    args = parser.parse_args(argv)

    store = LabelStore(args.out)
    if args.summary:
        print(json.dumps(summary(store), indent=1))
        return 0
    entries = corpus_entries(args.corpus, args.max_instructions, args.limit, args.seed, from_build=args.benchmark if args.from_build else None)
    client = open_client(args.scheduler, args.workers)
    try:
        client.register_plugin(CompilerPlugin(args.backend, args.opt), name=PLUGIN_NAME)
        compiler = client.run(lambda dask_worker: dask_worker.plugins[PLUGIN_NAME].identity())
        versions = {c["version"] for c in compiler.values()}
        if len(versions) != 1:
            raise SystemExit(f"the workers run different LLVM versions: {sorted(versions)}")
        compiler = next(iter(compiler.values()))
        cores = cluster_cores(client)
        print(f"labels: {cores} worker cores, compiler {compiler['backend']} (LLVM {compiler['version']})", file=sys.stderr)
        index = store.index()
        if args.retry_failed:
            if index is None:
                raise SystemExit(f"no labels in {args.out} to retry")
            store.check(index, compiler)
            figures = retry_failed(client, store, index, args.corpus, compiler["version"])
            print(f"labels: {figures['recovered']} of {figures['failed']} failed measurements now succeed "
                  f"({figures['seconds']} s)", file=sys.stderr)
            return 0
        if index is None:
            opt = find_opt(args.opt or None)
            vocabulary = load_vocabulary(opt)
            coreset = read_coreset(args.lists or args.coreset)
            seeds = [] if args.lists else [e for e in entries if e.get("instructions", 0) >= args.seed_min_instructions][: args.seed_functions]
            winners: list[str] = []
            if seeds and (args.deep_calls or args.local_steps):
                starts = [*LEVELS, *coreset]
                found = find_winners(client, args.corpus, seeds, starts, args.local_steps, args.seed, args.deep_calls)
                winners = [f["winner"] for f in found if f.get("winner") and f["count"] < f["start_count"]]
                print(f"labels: local search on {len(seeds)} functions: {len(winners)} winners beat their start", file=sys.stderr)
            pool = build_pool(vocabulary, coreset, winners, 0 if args.lists else args.pool_size, args.seed)
            settings = {k: getattr(args, k) for k in ("max_instructions", "pool_size", "seed_functions", "local_steps", "deep_calls",
                                                      "seed_min_instructions", "seed")}
            settings["lists"] = str(args.lists) if args.lists else None
            index = store.create(pool, compiler, settings)
        if args.lists:  # the pool of a --lists pass is known in advance: it must be the stored one
            wanted = build_pool(load_vocabulary(find_opt(args.opt or None)), read_coreset(args.lists), [], 0, args.seed)
            if pool_sha(wanted) != index["pool_sha"]:
                raise SystemExit(f"{args.out} holds labels under other lists than {args.lists}; use another --out")
        store.check(index, compiler)
        done = store.labelled_hashes()
        todo = [e for e in entries if e["hash"] not in done]
        print(f"labels: {len(done)} functions already labelled, {len(todo)} to go, pool of {len(index['pool'])} lists", file=sys.stderr)
        figures = label(client, store, args.corpus, todo, [p["passes"] for p in index["pool"]], args.shard_size, compiler["version"])
        if figures["functions"]:
            per_core = figures["functions_per_s"] / max(cores, 1)
            print(
                f"labels: {figures['functions']} functions in {figures['seconds']} s: {figures['functions_per_s']} functions/s, "
                f"{per_core:.3f} per core, {figures['functions_per_s'] * len(index['pool']):.0f} compilations/s",
                file=sys.stderr,
            )
    finally:
        close_client(client)
    print(json.dumps(summary(store), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
