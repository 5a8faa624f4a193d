"""Step 3: train the PassPilot decoder from scratch (PyTorch).

    python -m training.model.train --data data/model/dataset --out data/model/run \\
        --dim 256 --layers 4 --heads 4 --ffn 768 --ctx 2048 --device cpu --threads 2 --max-minutes 55

The defaults (dim 256, 4 layers, 4 heads, SwiGLU 768, 8k vocabulary, tied embeddings: ~5.5M parameters)
are sized for 2 CPU cores and under an hour; on a GPU use `--device cuda --amp` and larger settings.

Loss: cross-entropy on the answer tokens (pass list, counts, EOS) with weight 1 and on the prompt tokens
(next-token prediction over the normalized IR) with `--prompt-weight`. Resumable: `<out>/last.pt` holds
model, optimizer, step and sampler state and is written every `--save-every` steps, at the time limit and
on Ctrl-C; rerunning the same command continues. `<out>/log.jsonl` has the training and eval records.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from .common import WORK, log, resolve, write_json
from .gguf_llama import LlamaHParams


class Data:
    def __init__(self, directory: Path) -> None:
        arrays = np.load(directory / "tokens.npz")
        self.tokens = arrays["tokens"]
        self.start = arrays["start"]
        self.prompt_len = arrays["prompt_len"]
        self.length = arrays["length"]
        self.val = arrays["val"]
        self.meta = [json.loads(line) for line in (directory / "meta.jsonl").read_text().splitlines()]
        self.summary = json.loads((directory / "summary.json").read_text())
        self.train_ids = np.flatnonzero(~self.val)
        self.val_ids = np.flatnonzero(self.val)

    def sequence(self, index: int) -> np.ndarray:
        start = self.start[index]
        return self.tokens[start : start + self.length[index]]

    def prompt(self, index: int) -> list[int]:
        return self.sequence(index)[: self.prompt_len[index]].tolist()

    def answer(self, index: int) -> list[int]:
        return self.sequence(index)[self.prompt_len[index] :].tolist()


def batches(data: Data, ids: np.ndarray, batch_tokens: int, rng: np.random.Generator, pool: int = 512):
    """Endless length-bucketed batches: shuffle, take pools, sort a pool by length, cut by token budget."""
    while True:
        order = rng.permutation(ids)
        for p in range(0, len(order), pool):
            chunk = sorted(order[p : p + pool], key=lambda i: data.length[i])
            batch: list[int] = []
            longest = 0
            groups = []
            for index in chunk:
                longest_if = max(longest, int(data.length[index]))
                if batch and longest_if * (len(batch) + 1) > batch_tokens:
                    groups.append(batch)
                    batch, longest_if = [], int(data.length[index])
                batch.append(int(index))
                longest = longest_if
            if batch:
                groups.append(batch)
            for position in rng.permutation(len(groups)):
                yield groups[position]


def collate(data: Data, batch: list[int], prompt_weight: float, pad: int = 0):
    import torch

    width = max(int(data.length[i]) for i in batch) - 1
    inputs = np.full((len(batch), width), pad, dtype=np.int64)
    targets = np.zeros((len(batch), width), dtype=np.int64)
    weights = np.zeros((len(batch), width), dtype=np.float32)
    answer_mask = np.zeros((len(batch), width), dtype=bool)
    for row, index in enumerate(batch):
        seq = data.sequence(index).astype(np.int64)
        n = len(seq) - 1
        inputs[row, :n] = seq[:-1]
        targets[row, :n] = seq[1:]
        first_answer = int(data.prompt_len[index]) - 1  # position whose target is the first answer token
        weights[row, :first_answer] = prompt_weight
        weights[row, first_answer:n] = 1.0
        answer_mask[row, first_answer:n] = True
    return (torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(weights),
            torch.from_numpy(answer_mask))


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def evaluate(model, data: Data, args, device, generate: int) -> dict:
    import torch
    import torch.nn.functional as F

    from lsp_server.model import formats

    model.eval()
    ids = data.val_ids if len(data.val_ids) else data.train_ids[: max(1, args.eval_examples)]
    ids = ids[: args.eval_examples]
    total = count = 0.0
    with torch.no_grad():
        for p in range(0, len(ids), 8):
            inputs, targets, _, answer = collate(data, [int(i) for i in ids[p : p + 8]], 0.0)
            inputs, targets, answer = inputs.to(device), targets.to(device), answer.to(device)
            logits = model(inputs)
            loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
            mask = answer.flatten()
            total += float(loss[mask].sum())
            count += float(mask.sum())
    result = {"val_answer_loss": round(total / max(count, 1), 4), "val_examples": int(len(ids))}
    if generate:
        exact = parsed_ok = 0
        after_err = []
        tokenizer = _decoder(args)
        from lsp_server.model.profiles import PassPilotProfile

        done = PassPilotProfile().done
        for index in ids[:generate]:
            index = int(index)
            out = model.greedy(data.prompt(index), eos=args.eos_id, max_new=formats.MAX_ANSWER_TOKENS,
                               stop=lambda tokens: done(tokenizer(tokens)))
            answer = formats.parse_answer(tokenizer(out))
            want = data.meta[index]
            exact += answer.passes == formats.format_answer(want["passes"], None, None).strip()
            if answer.complete:
                parsed_ok += 1
                if want.get("best") is not None:
                    after_err.append(abs(answer.after - want["best"]))
        n = min(generate, len(ids))
        result.update({
            "val_pass_list_exact": round(exact / n, 3),
            "val_well_formed": round(parsed_ok / n, 3),
            "val_after_abs_err": round(float(np.mean(after_err)), 2) if after_err else None,
        })
    model.train()
    return result


_DECODER = None


def _decoder(args):
    """token ids -> text with llama.cpp's vocabulary (the runtime's detokenization)."""
    global _DECODER
    if _DECODER is None:
        from .tokenizer import load_tokenizer

        proposer = load_tokenizer(resolve(args.tokenizer_dir))
        _DECODER = proposer.decode
    return _DECODER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=WORK / "dataset")
    parser.add_argument("--out", type=Path, default=WORK / "run")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=0, help="0: same as --heads")
    parser.add_argument("--ffn", type=int, default=768, help="SwiGLU hidden size (a multiple of 32 for Q8_0)")
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--untied", action="store_true", help="separate output projection")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (GPU)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--steps", type=int, default=3000, help="length of the LR schedule")
    parser.add_argument("--max-minutes", type=float, default=55.0, help="stop (and save) after this long; 0: no limit")
    parser.add_argument("--batch-tokens", type=int, default=8192, help="padded tokens per batch")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--min-lr-ratio", type=float, default=0.1)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--prompt-weight", type=float, default=0.05, help="loss weight of prompt tokens")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-examples", type=int, default=200)
    parser.add_argument("--eval-generate", type=int, default=32, help="val examples decoded greedily per eval")
    parser.add_argument("--save-every", type=int, default=200)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from .model import Llama

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_dir, out = resolve(args.data), resolve(args.out)
    data = Data(data_dir)
    args.tokenizer_dir = data.summary["tokenizer"]
    settings = json.loads((Path(args.tokenizer_dir) / "tokenizer.json").read_text())
    from .tokenizer import vocabulary

    args.eos_id = vocabulary(Path(args.tokenizer_dir)).eos
    if args.ctx < data.summary["length_max"]:
        log(f"note: dataset holds examples up to {data.summary['length_max']} tokens > --ctx {args.ctx}")
    hp = LlamaHParams(
        vocab_size=settings["vocab_size"], dim=args.dim, layers=args.layers, heads=args.heads,
        kv_heads=args.kv_heads or args.heads, ffn=args.ffn, ctx=args.ctx, tied=not args.untied,
    )
    device = torch.device(args.device)
    model = Llama(hp).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
    )
    rng = np.random.default_rng(args.seed)
    step = 0
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "last.pt"
    config = {"hparams": hp.to_dict(), "tokenizer": args.tokenizer_dir, "data": str(data_dir)}
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state["config"]["hparams"] != config["hparams"]:
            raise SystemExit(f"{checkpoint} has other model settings; use another --out or delete it")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        rng.bit_generator.state = state["rng"]
        log(f"resumed from {checkpoint} at step {step}")
    write_json(out / "config.json", config)

    def save() -> None:
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "rng": rng.bit_generator.state, "config": config}, tmp)
        tmp.replace(checkpoint)

    log(f"model: {model.parameter_count() / 1e6:.2f}M parameters {hp.to_dict()}")
    log(f"data: {len(data.train_ids)} train / {len(data.val_ids)} val examples, "
        f"{data.summary['tokens_total']} tokens; device {device}, {args.threads} threads")
    log_file = open(out / "log.jsonl", "a")
    stream = batches(data, data.train_ids, args.batch_tokens, rng)
    began = time.time()
    seen_tokens = 0
    window_loss = window_answer = 0.0
    window_n = 0
    model.train()
    try:
        while step < args.steps:
            if args.max_minutes and (time.time() - began) / 60 > args.max_minutes:
                log(f"time limit of {args.max_minutes} minutes reached at step {step}")
                break
            inputs, targets, weights, answer = (t.to(device) for t in collate(data, next(stream), args.prompt_weight))
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, args)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
                logits = model(inputs)
            loss_all = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
            w = weights.flatten()
            loss = (loss_all * w).sum() / w.sum().clamp(min=1e-6)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            seen_tokens += int((weights > 0).sum())
            mask = answer.flatten()
            window_loss += loss.item()
            window_answer += loss_all.detach()[mask].mean().item() if mask.any() else 0.0
            window_n += 1
            if step % args.log_every == 0:
                elapsed = time.time() - began
                record = {"step": step, "loss": round(window_loss / window_n, 4),
                          "answer_loss": round(window_answer / window_n, 4), "lr": round(lr_at(step, args), 6),
                          "tokens_per_s": round(seen_tokens / elapsed), "minutes": round(elapsed / 60, 2)}
                log(json.dumps(record))
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                window_loss = window_answer = 0.0
                window_n = 0
            if step % args.save_every == 0:
                save()
            if step % args.eval_every == 0:
                record = {"step": step, **evaluate(model, data, args, device, args.eval_generate)}
                log("eval " + json.dumps(record))
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
    except KeyboardInterrupt:
        log("interrupted")
    save()
    record = {"step": step, "final": True, **evaluate(model, data, args, device, args.eval_generate)}
    log("eval " + json.dumps(record))
    log_file.write(json.dumps(record) + "\n")
    log_file.close()
    log(f"saved {checkpoint} (step {step})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
