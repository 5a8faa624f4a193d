"""Step 1: train the SentencePiece BPE tokenizer of the PassPilot model.

    python -m training.model.tokenizer --corpus data/corpus --out data/model/tokenizer --vocab-size 8000

Input: the corpus's function modules (`<corpus>/manifest.jsonl`, else `<corpus>/**/*.ll`), normalized
with `lsp_server.ir.normalize.normalize_function` (cached in `<out>/../normalized.jsonl`), one IR line
per SentencePiece sentence. Pass names of `opt --print-passes` (module/cgscc/function/loop passes),
pipeline pieces (`function(`, `default<Oz>`, ...) are user-defined single tokens; the separator and pad
(`lsp_server.model.formats.CONTROL_TOKENS`) are control tokens; digits are split; bytes fall back to
`<0xNN>` tokens. `EXTRA_TOKENS` (a newline followed by the two-space indentation of every body line)
are appended to the vocabulary as user-defined tokens that llama.cpp matches in raw text.

Outputs in <out>:
  tokenizer.model   the SentencePiece model
  tokenizer.json    settings, user-defined symbols, vocabulary size (the cache key of this step)
  vocab.gguf        a tiny random-weight llama GGUF carrying the vocabulary: later steps tokenize with
                    llama.cpp through it, so training sees exactly the runtime's tokens
  report.json       tokens per function (llama.cpp) vs bytes of the IR
"""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path

from lsp_server.model import formats

from .common import WORK, DATA, NormalizedCache, corpus_files, digest, log, pass_names, resolve, write_json


# Literal multi-character tokens SentencePiece cannot learn (it trains line by line).
EXTRA_TOKENS = ("\n  ",)


def user_symbols(opt: str) -> list[str]:
    names = pass_names(opt)
    symbols = list(dict.fromkeys([*formats.STRUCTURE_TOKENS, *names]))
    # Longer first: SentencePiece and llama.cpp both prefer the longest user-defined match.
    return sorted(symbols, key=lambda s: (-len(s), s))


def train_sentencepiece(lines_file: Path, out: Path, vocab_size: int, symbols: list[str], threads: int) -> Path:
    import sentencepiece as spm

    prefix = out / "tokenizer"
    spm.SentencePieceTrainer.train(
        input=str(lines_file),
        model_prefix=str(prefix),
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        byte_fallback=True,
        split_digits=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        allow_whitespace_only_pieces=True,
        max_sentencepiece_length=24,
        user_defined_symbols=symbols,
        control_symbols=list(formats.CONTROL_TOKENS),
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        input_sentence_size=3_000_000,
        shuffle_input_sentence=True,
        num_threads=threads,
        minloglevel=1,
    )
    (out / "tokenizer.vocab").unlink(missing_ok=True)
    return prefix.with_suffix(".model")


def vocabulary(tokenizer_dir: Path):
    """The GGUF vocabulary of a trained tokenizer directory (SentencePiece pieces + extra tokens)."""
    import json

    from .gguf_llama import vocab_from_sentencepiece

    settings = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    return vocab_from_sentencepiece(
        tokenizer_dir / "tokenizer.model", settings["user_defined_symbols"], settings.get("extra_tokens", ())
    )


def write_vocab_gguf(tokenizer_dir: Path, path: Path, ctx: int = 8192) -> Path:
    from .gguf_llama import LlamaHParams, random_tensors, write_llama_gguf

    vocab = vocabulary(tokenizer_dir)
    hp = LlamaHParams(vocab_size=len(vocab), dim=32, layers=1, heads=2, kv_heads=2, ffn=64, ctx=ctx)
    return write_llama_gguf(path, hp, random_tensors(hp), vocab, name="passpilot-vocab")


def load_tokenizer(tokenizer_dir: Path, threads: int = 1):
    """A proposer over vocab.gguf: `.prompt_tokens(ir)`, `.profile.answer_tokens(text, .vocabulary)`."""
    from lsp_server.model import load_proposer

    return load_proposer(tokenizer_dir / "vocab.gguf", threads=threads)


def report(files: list[Path], tokenizer_dir: Path, sample: int, seed: int = 0) -> dict:
    proposer = load_tokenizer(tokenizer_dir)
    chosen = list(files)
    random.Random(seed).shuffle(chosen)
    chosen = chosen[:sample]
    tokens, raw_bytes, norm_bytes = [], [], []
    for path in chosen:
        raw = path.read_text(errors="replace")
        try:
            ids = proposer.prompt_tokens(raw)
        except Exception:
            continue
        tokens.append(len(ids))
        raw_bytes.append(len(raw.encode()))
        norm_bytes.append(len(formats.prompt_text(raw).encode()))
    if not tokens:
        return {"functions": 0}

    def pct(values: list[int], q: float) -> int:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    answer_room = formats.MAX_ANSWER_TOKENS
    result = {
        "functions": len(tokens),
        "tokens_mean": round(statistics.mean(tokens), 1),
        "tokens_median": statistics.median(tokens),
        "tokens_p90": pct(tokens, 0.9),
        "tokens_max": max(tokens),
        "raw_bytes_mean": round(statistics.mean(raw_bytes), 1),
        "normalized_bytes_mean": round(statistics.mean(norm_bytes), 1),
        "bytes_per_token": round(sum(norm_bytes) / sum(tokens), 2),
        "token_reduction_vs_bytes": round(sum(norm_bytes) / sum(tokens), 2),
        "fit_ctx": {
            str(ctx): round(sum(t + answer_room <= ctx for t in tokens) / len(tokens), 3)
            for ctx in (512, 1024, 2048, 4096)
        },
    }
    proposer.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DATA / "corpus")
    parser.add_argument("--out", type=Path, default=WORK / "tokenizer")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--max-functions", type=int, default=0, help="0: all")
    parser.add_argument("--report-sample", type=int, default=2000, help="functions measured for the report")
    parser.add_argument("--opt", default="opt-22")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="retrain even when the cache key matches")
    args = parser.parse_args(argv)

    corpus, out = resolve(args.corpus), resolve(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = corpus_files(corpus, args.max_functions)
    if not files:
        parser.error(f"no function modules under {corpus}")
    log(f"{len(files)} function modules under {corpus}")

    symbols = user_symbols(args.opt)
    cache = NormalizedCache(out.parent / "normalized.jsonl")
    lines_file = out / "spm_input.txt"
    count = 0
    seen: set[str] = set()
    with open(lines_file, "w") as handle:
        for _, text in cache.normalized(files):
            if text in seen:
                continue
            seen.add(text)
            count += 1
            for line in text.splitlines():
                if line.strip():
                    # At run time the newline and indentation before a body line are one EXTRA_TOKENS
                    # token, so BPE should learn line starts without the indentation.
                    handle.write((line[2:] if line.startswith("  ") else line) + "\n")
    log(f"{count} distinct normalized functions -> {lines_file}")

    key = digest(
        str(args.vocab_size), "\n".join(symbols), "\n".join(EXTRA_TOKENS), lines_file.read_text()[:10_000_000], "v2"
    )
    settings_file = out / "tokenizer.json"
    model_file = out / "tokenizer.model"
    settings = None
    if settings_file.exists() and model_file.exists() and not args.force:
        import json

        settings = json.loads(settings_file.read_text())
        if settings.get("key") != key:
            settings = None
    if settings is None:
        log(f"training SentencePiece BPE, vocabulary {args.vocab_size}, {len(symbols)} user-defined symbols")
        train_sentencepiece(lines_file, out, args.vocab_size, symbols, args.threads)
        import sentencepiece as spm

        size = spm.SentencePieceProcessor(model_file=str(model_file)).get_piece_size()
        settings = {
            "key": key,
            "vocab_size": size + len(EXTRA_TOKENS),
            "extra_tokens": list(EXTRA_TOKENS),
            "requested_vocab_size": args.vocab_size,
            "user_defined_symbols": symbols,
            "control_tokens": list(formats.CONTROL_TOKENS),
            "functions": count,
        }
        write_json(settings_file, settings)
        vocab_gguf = write_vocab_gguf(out, out / "vocab.gguf")
        settings["vocab_size"] = len(vocabulary(out))
        write_json(settings_file, settings)
        log(f"wrote {vocab_gguf}")
    else:
        log("tokenizer up to date (tokenizer.json key matches); --force retrains")
    lines_file.unlink(missing_ok=True)

    log(f"vocabulary: {settings['vocab_size']} tokens")
    stats = report(files, out, args.report_sample)
    write_json(out / "report.json", stats)
    log(
        f"tokens per function (llama.cpp, prompt incl. <s> and separator): mean {stats.get('tokens_mean')}, "
        f"median {stats.get('tokens_median')}, p90 {stats.get('tokens_p90')}, max {stats.get('tokens_max')}; "
        f"normalized IR bytes per function {stats.get('normalized_bytes_mean')} "
        f"(raw {stats.get('raw_bytes_mean')}): {stats.get('bytes_per_token')} bytes/token; "
        f"fits in context (with answer room): {stats.get('fit_ctx')}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
