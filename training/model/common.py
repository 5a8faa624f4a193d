"""Shared helpers of the model-training steps: paths, the corpus, cached normalization, pass names."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
WORK = DATA / "model"  # default home of every step's outputs (data/ is git-ignored)
OPT = os.environ.get("PASSPILOT_OPT", "opt-22")

def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def resolve(path: str | Path) -> Path:
    """Paths in manifests/labels are relative to the repository root unless absolute."""
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


def pass_names(opt: str = OPT) -> list[str]:
    """The pass names the language server allows with this `opt` (`lsp_server.compiler.passes`: its
    `--print-passes` transformations, minus observers, instrumentation and I/O), sorted."""
    from lsp_server.compiler import find_opt, load_vocabulary

    return sorted(load_vocabulary(find_opt(opt)).names)


def corpus_files(corpus: Path, limit: int = 0) -> list[Path]:
    """Function modules of the corpus: the manifest's order when there is one, else sorted glob."""
    manifest = corpus / "manifest.jsonl"
    files: list[Path] = []
    if manifest.exists():
        for line in manifest.read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            path = record.get("path") or record.get("file")
            if path:
                candidate = Path(path)
                if not candidate.is_absolute():
                    candidate = corpus / path if (corpus / path).exists() else resolve(path)
                files.append(candidate)
    if not files:
        files = sorted(p for p in corpus.rglob("*.ll") if "/.build/" not in str(p))
    if limit:
        files = files[:limit]
    return files


def file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path}:{stat.st_size}:{int(stat.st_mtime)}"


class NormalizedCache:
    """`normalize_function` results, kept in a JSONL file keyed by path, size and mtime (resumable)."""

    def __init__(self, cache_file: Path) -> None:
        self.cache_file = cache_file
        self.entries: dict[str, str | None] = {}
        if cache_file.exists():
            for line in cache_file.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interrupted run
                self.entries[record["key"]] = record["text"]

    def normalized(self, paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
        """(path, normalized text) for every readable function; new results are appended to the cache."""
        from lsp_server.ir.normalize import normalize_function

        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.cache_file, "a") as out:
            for path in paths:
                try:
                    key = file_key(path)
                except OSError:
                    continue
                if key not in self.entries:
                    try:
                        text: str | None = normalize_function(path.read_text(errors="replace"))
                    except Exception:
                        text = None
                    self.entries[key] = text
                    out.write(json.dumps({"key": key, "text": text}) + "\n")
                text = self.entries[key]
                if text:
                    yield path, text


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def run_info() -> dict:
    return {"python": sys.version.split()[0], "time": time.strftime("%Y-%m-%d %H:%M:%S")}
