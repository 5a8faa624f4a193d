"""Step 2: turn the labels into token sequences (prompt + answer) with the runtime's own tokenization.

    python -m training.model.dataset --labels data/labels.jsonl --tokenizer data/model/tokenizer \\
        --out data/model/dataset --ctx 2048

Input: `data/labels.jsonl` lines `{"path": ".../x.ll", "passes": "...", "original": n, "oz": n,
"best": n}` (the autotuner's output). Each example is

    prompt = <s> normalized IR <|passes|>          (LlamaProposer.prompt_tokens, the runtime's code)
    answer = formats.format_answer(passes, original, best) </s>

tokenized by llama.cpp through `<tokenizer>/vocab.gguf`. Examples longer than `--ctx` are dropped
(counted in the summary), and so are prompts that leave less than `formats.MAX_ANSWER_TOKENS` of the
context for the answer (the runtime refuses those). Validation split: 5% of functions by normalized-IR hash, so duplicates never
straddle the split.

Outputs in <out>: `tokens.npz` (tokens int32 concatenated, start, prompt_len, length, val), `meta.jsonl`
(path, passes, counts per example, same order), `summary.json`. Cached: rerun only when the labels,
tokenizer or settings change (or with --force).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
from pathlib import Path

import numpy as np

from lsp_server.model import formats

from .common import DATA, WORK, digest, log, resolve, write_json
from .tokenizer import load_tokenizer


def read_labels(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("path") and record.get("passes"):
            records.append(record)
    return records


def is_val(normalized: str, val_percent: int) -> bool:
    return int(hashlib.sha256(normalized.encode()).hexdigest()[:8], 16) % 100 < val_percent


_WORKER: dict = {}


def _init_worker(tokenizer_dir: str) -> None:
    proposer = load_tokenizer(Path(tokenizer_dir))
    _WORKER["proposer"] = proposer
    _WORKER["vocab"] = proposer.vocabulary


def _encode(record: dict) -> tuple[list[int], list[int], bool] | None:
    """(prompt tokens, answer tokens, is validation) of one label, exactly as the runtime builds them."""
    proposer, vocab = _WORKER["proposer"], _WORKER["vocab"]
    try:
        raw = resolve(record["path"]).read_text(errors="replace")
        normalized = formats.prompt_text(raw)
    except Exception:
        return None
    prompt = proposer.profile.prompt_tokens_from_text(normalized, vocab)
    answer_text = formats.format_answer(record["passes"], record.get("original"), record.get("best"))
    answer = proposer.profile.answer_tokens(answer_text, vocab)[: formats.MAX_ANSWER_TOKENS]
    return prompt, answer, is_val(normalized, VAL_PERCENT)


VAL_PERCENT = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, default=DATA / "labels.jsonl")
    parser.add_argument("--tokenizer", type=Path, default=WORK / "tokenizer")
    parser.add_argument("--out", type=Path, default=WORK / "dataset")
    parser.add_argument("--ctx", type=int, default=2048, help="longest example (prompt + answer) kept")
    parser.add_argument("--jobs", type=int, default=2, help="tokenizing processes")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)

    labels_file, tokenizer_dir, out = resolve(args.labels), resolve(args.tokenizer), resolve(args.out)
    settings = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    key = digest(
        labels_file.read_text(), settings["key"], str(args.ctx), str(VAL_PERCENT), str(formats.MAX_ANSWER_TOKENS), "v2"
    )
    summary_file = out / "summary.json"
    if summary_file.exists() and not args.force and json.loads(summary_file.read_text()).get("key") == key:
        log(f"dataset up to date: {summary_file}")
        print(summary_file.read_text())
        return 0

    labels = read_labels(labels_file)
    log(f"{len(labels)} labels from {labels_file}; tokenizing with {args.jobs} processes")
    tokens: list[np.ndarray] = []
    start, prompt_len, length, val = [], [], [], []
    meta = []
    dropped_long = dropped_unreadable = 0
    offset = 0
    with concurrent.futures.ProcessPoolExecutor(
        args.jobs, initializer=_init_worker, initargs=(str(tokenizer_dir),)
    ) as pool:
        results = pool.map(_encode, labels, chunksize=16)
        for done, (record, result) in enumerate(zip(labels, results), 1):
            if done % 5000 == 0:
                log(f"{done}/{len(labels)}")
            if result is None:
                dropped_unreadable += 1
                continue
            prompt, answer, validation = result
            total = len(prompt) + len(answer)
            # The runtime refuses prompts that leave less than MAX_ANSWER_TOKENS of context for the answer.
            if len(prompt) > args.ctx - formats.MAX_ANSWER_TOKENS or total > args.ctx:
                dropped_long += 1
                continue
            tokens.append(np.asarray(prompt + answer, dtype=np.int32))
            start.append(offset)
            prompt_len.append(len(prompt))
            length.append(total)
            val.append(validation)
            offset += total
            meta.append({k: record.get(k) for k in ("path", "passes", "original", "oz", "best")})
    if not tokens:
        parser.error("no usable examples")
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        out / "tokens.npz",
        tokens=np.concatenate(tokens),
        start=np.asarray(start, dtype=np.int64),
        prompt_len=np.asarray(prompt_len, dtype=np.int32),
        length=np.asarray(length, dtype=np.int32),
        val=np.asarray(val, dtype=bool),
    )
    with open(out / "meta.jsonl", "w") as handle:
        for record in meta:
            handle.write(json.dumps(record) + "\n")
    lengths = np.asarray(length)
    summary = {
        "key": key,
        "examples": len(tokens),
        "train": int(len(tokens) - sum(val)),
        "val": int(sum(val)),
        "dropped_too_long": dropped_long,
        "dropped_unreadable": dropped_unreadable,
        "tokens_total": int(lengths.sum()),
        "length_mean": round(float(lengths.mean()), 1),
        "length_max": int(lengths.max()),
        "answer_tokens_mean": round(float((lengths - np.asarray(prompt_len)).mean()), 1),
        "vocab_size": settings["vocab_size"],
        "ctx": args.ctx,
        "tokenizer": str(tokenizer_dir),
        "labels": str(labels_file),
    }
    write_json(summary_file, summary)
    log(json.dumps({k: v for k, v in summary.items() if k != "key"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
