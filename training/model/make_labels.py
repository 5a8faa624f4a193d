"""Stand-in labels for smoke runs: every function labelled with `default<Oz>` and its real counts.

    python -m training.model.make_labels --corpus data/corpus --out data/model-smoke/labels.jsonl --limit 300

The real labels (`data/labels.jsonl`) come from the autotuner; this writes the same line format,
`{"path", "passes", "original", "oz", "best"}`, with `passes = "default<Oz>"` and `best = oz`, so the
rest of the pipeline can be exercised before the autotuner has run. Resumable (appends, skips paths
already labelled).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
from pathlib import Path

from .common import DATA, OPT, ROOT, corpus_files, log, resolve


def label(path: Path, opt: str, passes: str) -> dict | None:
    from lsp_server.ir.module import count_instructions

    try:
        text = path.read_text(errors="replace")
        original = count_instructions(text)
        done = subprocess.run(
            [opt, f"-passes={passes}", "-S", "-o", "-", str(path)], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            return None
        optimized = count_instructions(done.stdout)
    except Exception:
        return None
    try:
        shown = str(path.relative_to(ROOT))
    except ValueError:
        shown = str(path)
    return {"path": shown, "passes": passes, "original": original, "oz": optimized, "best": optimized}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DATA / "corpus")
    parser.add_argument("--out", type=Path, default=DATA / "model-smoke" / "labels.jsonl")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--passes", default="default<Oz>")
    parser.add_argument("--opt", default=OPT)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)

    out = resolve(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done: set[str] = set()
    if out.exists():
        for line in out.read_text().splitlines():
            try:
                done.add(json.loads(line)["path"])
            except (json.JSONDecodeError, KeyError):
                continue
    files = corpus_files(resolve(args.corpus), args.limit)
    todo = [p for p in files if str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) not in done]
    log(f"{len(files)} functions, {len(todo)} to label")
    written = 0
    with open(out, "a") as handle, concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
        for record in pool.map(label, todo, [args.opt] * len(todo), [args.passes] * len(todo), chunksize=8):
            if record is not None:
                handle.write(json.dumps(record) + "\n")
                written += 1
    log(f"wrote {written} labels to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
