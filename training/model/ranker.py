"""The ranking model: one forward pass scores a fixed set of pass lists for a function (lsp_server/model/ranking.py).

    python -m training.model.ranker dataset --labels data/labels-rank,data/labels-winners --lists training/model/ranking-lists.txt
    python -m training.model.ranker train --max-minutes 45 --val-packages cjson,lz4,dash
    python -m training.model.ranker export --out data/model/rank/passpilot.gguf

* **Lists**: `training/model/ranking-lists.txt`: the coreset the lists were built from, the greedy coreset
  curve's other lists, then deep-search winners (`ranker lists --winners`).
* **Prompt**: `<s>`, the function's 31 AutoPhase-style counts as feature tokens (`features.feature_tokens`:
  one control token per count and log2 bucket), its normalized IR, `<|passes|>`: the runtime's own
  `RankingProfile`, cut to its head like the runtime does (`--ctx`).
* **Targets** (from the labels, no compiler call): per function the gain of each list under -Oz,
  `g_j = (oz - min(count_j, oz)) / oz`. `--objective soft` (the default): cross-entropy against
  `softmax((g_j - max g) / tau)`, `tau = 0.25 max g`, so lists near the best share the mass; `regress`:
  the logit of each list token predicts `10 g_j`, like Coreset-NVP's normalized-value predictor. With
  every function labelled under every list, `soft` ranked better on held-out packages. Functions weigh
  by their package's size ** -`--package-balance`. Then `<|listJ|> original best </s>` for the top list J
  teaches the counts that hover shows (`--count-weight`).
* **Model**: the base GGUF's Llama (default `models/passpilot.gguf`, dequantized: its tokenizer and IR
  knowledge, its first `--layers` blocks), its vocabulary extended by one control token per list and the
  feature tokens (new rows start near the mean embedding); trained with AdamW.
* **Validation**: whole packages with `--val-packages` (the shift the benchmark has), else the functions
  `training.coreset.held_out` sets aside; never trained on. Every `--eval-every` steps: gain under -Oz at
  budgets 1, 3, 10, 30 when compiling the model's top lists, read from the labels, against the fixed order
  of the lists file; the best checkpoint is kept.
* **Export**: the lists stored in greedy order on the training functions (`greedy_list_order`), and how
  many best-scored lists lead before that order (`passpilot.ranking.top`), chosen on the validation set.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import math
import time
from pathlib import Path

import numpy as np

from lsp_server.model import formats
from lsp_server.model.features import all_feature_tokens
from lsp_server.model.ranking import RANKING_CONTEXT_KEY, RANKING_LISTS_KEY, RANKING_TOP_KEY, RankingProfile, format_counts, list_token
from training.coreset import held_out
from training.labels import FAILED, LEVELS, UNKNOWN, LabelStore, merge_labels, read_coreset

from .common import ROOT, WORK, log, resolve, write_json
from .gguf_llama import CONTROL, LlamaHParams, Vocab, tensor_names

RANK = WORK / "rank"
LLAMA_MIN_CONTEXT = 256
GAIN_SCALE = 10.0  # regression targets: 10 x the share of -Oz's instructions a list removes
BUDGETS = (1, 3, 10, 30)


# ------------------------------------------------------------------------------------------ base model


def read_base(path: Path) -> tuple[LlamaHParams, Vocab, dict[str, np.ndarray]]:
    """Hyper-parameters, vocabulary and float32 weights of a llama GGUF (quantized tensors are dequantized)."""
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(path))

    def scalar(key: str):
        field = reader.fields[key]
        return field.parts[field.data[0]][0]

    def array(key: str) -> list:
        field = reader.fields[key]
        return [field.parts[i] for i in field.data]

    tokens = [bytes(part).decode("utf-8") for part in array("tokenizer.ggml.tokens")]
    vocab = Vocab(
        tokens=tokens,
        scores=[float(p[0]) for p in array("tokenizer.ggml.scores")],
        types=[int(p[0]) for p in array("tokenizer.ggml.token_type")],
        bos=int(scalar("tokenizer.ggml.bos_token_id")),
        eos=int(scalar("tokenizer.ggml.eos_token_id")),
        unk=int(scalar("tokenizer.ggml.unknown_token_id")),
        pad=int(scalar("tokenizer.ggml.padding_token_id")) if "tokenizer.ggml.padding_token_id" in reader.fields else None,
    )
    tensors = {t.name: np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32) for t in reader.tensors}
    hp = LlamaHParams(
        vocab_size=len(tokens),
        dim=int(scalar("llama.embedding_length")),
        layers=int(scalar("llama.block_count")),
        heads=int(scalar("llama.attention.head_count")),
        kv_heads=int(scalar("llama.attention.head_count_kv")),
        ffn=int(scalar("llama.feed_forward_length")),
        ctx=int(scalar("llama.context_length")),
        rope_base=float(scalar("llama.rope.freq_base")),
        norm_eps=float(scalar("llama.attention.layer_norm_rms_epsilon")),
        tied="output.weight" not in tensors,
    )
    ranked = sum(1 for token in tokens if token.startswith(("<|list", "<|f:")) and token.endswith("|>"))
    if ranked:  # a ranking model as the base: its list and feature tokens (the last rows) are dropped, new ones come later
        vocab = Vocab(tokens[:-ranked], vocab.scores[:-ranked], vocab.types[:-ranked], vocab.bos, vocab.eos, vocab.unk, vocab.pad)
        hp = LlamaHParams(**{**hp.to_dict(), "vocab_size": len(vocab.tokens)})
    for name, shape in tensor_names(hp).items():
        if name in ("token_embd.weight", "output.weight"):
            tensors[name] = tensors[name].reshape(-1, shape[1])[: shape[0]]
        tensors[name] = tensors[name].reshape(shape)
    return hp, vocab, tensors


def added_tokens(lists: int) -> list[str]:
    """The tokens a ranking model adds after its base vocabulary, in order: `<|list0|>` ..., then the feature tokens."""
    return [list_token(i) for i in range(lists)] + all_feature_tokens()


def extended_vocab(base: Vocab, count: int) -> Vocab:
    """The base vocabulary plus `added_tokens`, as control tokens (never produced from text)."""
    names = added_tokens(count)
    clash = set(names) & set(base.tokens)
    if clash:
        raise SystemExit(f"the base vocabulary already has {sorted(clash)[:3]}")
    return Vocab(base.tokens + names, base.scores + [0.0] * len(names), base.types + [CONTROL] * len(names), base.bos, base.eos, base.unk, base.pad)


class ExtendedVocabulary:
    """The base model's llama.cpp vocabulary, with the list and feature tokens a ranking model adds after it:
    the runtime's own `RankingProfile` builds the training prompts through it."""

    def __init__(self, base, base_size: int, lists: int) -> None:
        self.base = base
        self.bos, self.eos = base.bos, base.eos
        self.extra = {name: base_size + i for i, name in enumerate(added_tokens(lists))}

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        return self.base.tokenize(text, add_bos=add_bos, special=special)

    def special_token(self, text: str) -> int | None:
        return self.extra.get(text, self.base.special_token(text))


def load_weights(model, tensors: dict[str, np.ndarray], extra_rows: int) -> None:
    """Copy GGUF-named float32 weights into `training.model.model.Llama`; list-token rows start near the mean."""
    import torch

    names = {gguf_name: tensor for gguf_name, tensor in zip(model.gguf_tensors(), _parameters_in_gguf_order(model))}
    with torch.no_grad():
        for name, parameter in names.items():
            source = torch.tensor(tensors[name])  # a copy: the GGUF reader maps the file read-only
            if name in ("token_embd.weight", "output.weight") and extra_rows:
                rows = source.mean(0, keepdim=True) + 0.02 * torch.randn(extra_rows, source.shape[1], generator=torch.Generator().manual_seed(0))
                source = torch.cat([source, rows], 0)
            parameter.copy_(source)


def _parameters_in_gguf_order(model) -> list:
    out = [model.embed.weight, model.norm.weight]
    if model.output is not None:
        out.append(model.output.weight)
    for block in model.blocks:
        out += [block.attn_norm.weight, block.attn.q.weight, block.attn.k.weight, block.attn.v.weight, block.attn.o.weight,
                block.ffn_norm.weight, block.mlp.gate.weight, block.mlp.up.weight, block.mlp.down.weight]
    return out


# --------------------------------------------------------------------------------------------- dataset


def rank_targets(gains: np.ndarray) -> np.ndarray:
    """Soft targets over lists from their gains: lists near the best share the mass."""
    top = gains.max(axis=1, keepdims=True)
    tau = 0.25 * top + 1e-3
    weights = np.exp((gains - top) / tau)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def list_gains(counts: np.ndarray, oz: np.ndarray) -> np.ndarray:
    """(oz - min(count, oz)) / oz per list; a failed list gains nothing."""
    capped = np.where(counts < 0, oz[:, None], np.minimum(counts, oz[:, None]))  # FAILED or UNKNOWN
    return ((oz[:, None] - capped) / np.maximum(oz[:, None], 1)).astype(np.float32)


def cmd_dataset(args) -> int:
    from lsp_server.model import load_proposer

    lists = read_coreset(resolve(args.lists))[: args.max_k]
    stores = [LabelStore(resolve(Path(folder))).load() for folder in args.labels.split(",")]
    corpus = resolve(args.corpus)
    by_hash = {}
    manifest = corpus / "manifest.jsonl"
    if manifest.exists():
        for line in manifest.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                by_hash[entry["hash"]] = entry["path"]
    base = load_proposer(resolve(args.base))
    base_size = read_base(resolve(args.base))[0].vocab_size
    vocab = ExtendedVocabulary(base.vocabulary, base_size, len(lists))
    profile = RankingProfile()
    budget = args.ctx - profile.max_answer_tokens  # the runtime's room for a prompt (LlamaProposer._prompt)
    merged = merge_labels(stores, lists)
    tokens, start, length, prompt_len = [], [], [], []
    counts, oz_list, original, hashes, pkgs = [], [], [], [], []
    cut = offset = 0
    for function_hash, row in merged.items():
        path = corpus / row["path"]
        if not path.exists() and function_hash in by_hash:
            path = corpus / by_hash[function_hash]
        try:
            prompt = profile.prompt_tokens(path.read_text(errors="replace"), vocab)
        except Exception:  # unreadable or gone from the corpus
            continue
        if len(prompt) > budget:
            prompt = prompt[: budget - 1] + prompt[-1:]
            cut += 1
        oz, row_counts = row["oz"], row["counts"]
        gains = list_gains(row_counts[None, :], np.asarray([oz]))[0]
        top = int(gains.argmax())
        after = min(oz, int(row_counts[top])) if row_counts[top] >= 0 else oz
        answer = [base_size + top, *vocab.tokenize(format_counts(row["original"], after), add_bos=False), vocab.eos]
        sequence = np.asarray(prompt + answer, dtype=np.int32)
        tokens.append(sequence)
        start.append(offset)
        length.append(len(sequence))
        prompt_len.append(len(prompt))
        offset += len(sequence)
        counts.append(row_counts)
        oz_list.append(oz)
        original.append(row["original"])
        hashes.append(function_hash)
        pkgs.append(row["pkg"])
        if len(hashes) % 5000 == 0:
            log(f"dataset: {len(hashes)} functions")
    out = resolve(args.out)
    out.mkdir(parents=True, exist_ok=True)
    validation = held_out(hashes)
    np.savez(
        out / "dataset.npz",
        tokens=np.concatenate(tokens), start=np.asarray(start, dtype=np.int64), length=np.asarray(length, dtype=np.int32),
        prompt_len=np.asarray(prompt_len, dtype=np.int32), counts=np.asarray(counts, dtype=np.int32),
        oz=np.asarray(oz_list, dtype=np.int64), original=np.asarray(original, dtype=np.int32),
        val=validation, pkg=np.asarray(pkgs, dtype=str),
    )
    summary = {
        "functions": len(hashes), "val": int(validation.sum()), "cut_to_head": cut,
        "lists": lists, "ctx": args.ctx, "base": str(resolve(args.base)), "base_vocab": base_size,
        "tokens_total": int(offset), "labels": args.labels, "pools": [len(s.pool) for s in stores],
    }
    write_json(out / "summary.json", summary)
    base.close()
    log(f"dataset: {len(hashes)} functions ({summary['val']} validation), {cut} cut to their head, {len(lists)} lists -> {out}")
    return 0


def lists_to_rank(coreset: Sequence[str], curve: Sequence[str]) -> list[str]:
    """The shipped coreset's lists first (the fixed order the model is measured against), then the curve's
    other lists; the levels are left out (`training.labels --lists` adds them to every pool)."""
    out: list[str] = []
    for passes in [*coreset, *curve]:
        if passes not in out and passes not in LEVELS:
            out.append(passes)
    return out


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def greedy_winners(labels, lists: Sequence[str], most: int) -> list[str]:
    """Local-search winners of a label folder's pool (kind `local`) that remove the most instructions beyond
    -Oz and `lists`, greedily, on the functions not held out; at most `most`."""
    from training.coreset import as_costs, greedy

    usable = labels.usable() & ~held_out(labels.hashes)
    costs = as_costs(labels.counts[usable])
    current = labels.oz[usable].astype(np.int64)
    for passes in lists:
        if passes in labels.pool:
            current = np.minimum(current, costs[:, labels.pool.index(passes)])
    candidates = [j for j, kind in enumerate(labels.kinds) if kind == "local" and labels.pool[j] not in lists]
    picked = greedy(costs[:, candidates], current, most)
    return [labels.pool[candidates[column]] for column, _ in picked]


def cmd_lists(args) -> int:
    lists = lists_to_rank(read_coreset(resolve(args.coreset)), read_coreset(resolve(args.curve)))
    winners = greedy_winners(LabelStore(resolve(args.winners)).load(), lists, args.max_winners) if args.winners else []
    lists += winners
    header = [
        "# The pass lists the ranking model orders, one `-passes=` value per line (the levels are added by",
        f"# `training.labels --lists`): {resolve(args.coreset).name} first, then the other lists of the greedy coreset",
        f"# curve {shown(resolve(args.curve))}" + (
            f", then {len(winners)} local-search winners of {shown(resolve(args.winners))} (greedy by the instructions each "
            "removes beyond the lists before it)" if args.winners else ""
        ) + ". Written by `python -m training.model.ranker lists`.",
    ]
    out = resolve(args.out)
    out.write_text("\n".join(header + lists) + "\n")
    log(f"{len(lists)} lists -> {out}")
    return 0


# ---------------------------------------------------------------------------------------------- train


class RankData:
    def __init__(self, directory: Path) -> None:
        arrays = np.load(directory / "dataset.npz")
        self.tokens = arrays["tokens"]
        self.start, self.length, self.prompt_len = arrays["start"], arrays["length"], arrays["prompt_len"]
        self.counts, self.oz, self.val = arrays["counts"], arrays["oz"], arrays["val"]
        self.pkg = arrays["pkg"]
        self.summary = json.loads((directory / "summary.json").read_text())
        self.gains = list_gains(self.counts, self.oz)
        self.targets = rank_targets(self.gains)
        self.improvable = self.gains.max(axis=1) > 0
        self.known = self.counts != UNKNOWN
        self.split(self.val)

    def split(self, val: np.ndarray) -> None:
        """Train on the functions outside `val`; validate on those in it labelled under every list (figures need
        every list measured), or on all of `val` when none is."""
        self.val = val
        complete = self.known.all(axis=1)
        self.train_ids = np.flatnonzero(~val)
        self.val_ids = np.flatnonzero(val & complete) if (val & complete).any() else np.flatnonzero(val)

    def package_weights(self, balance: float) -> np.ndarray:
        """Per-function factor (mean package size / its package size) ** balance: 0 weighs every function alike,
        1 every package alike, so that a few large packages (openssl, vim) do not set the ranking for all code."""
        _, inverse, sizes = np.unique(self.pkg, return_inverse=True, return_counts=True)
        factor = (sizes.mean() / sizes.astype(np.float64)) ** balance
        return factor[inverse]

    def sequence(self, index: int) -> np.ndarray:
        return self.tokens[self.start[index] : self.start[index] + self.length[index]]

    def prompt(self, index: int) -> list[int]:
        """The prompt tokens of one function, up to `<|passes|>`: what the runtime gives llama.cpp."""
        return self.sequence(index)[: self.prompt_len[index]].tolist()


def hold_out_packages(data: RankData, packages: str) -> None:
    """Validate on whole packages (comma-separated) the model never sees, the shift the benchmark has; "" keeps
    the dataset's own held-out share."""
    held = [name.strip() for name in packages.split(",") if name.strip()]
    if not held:
        return
    unknown = sorted(set(held) - set(data.pkg.tolist()))
    if unknown:
        raise SystemExit(f"--val-packages: no function of {', '.join(unknown)} in the dataset")
    data.split(np.isin(data.pkg, held))
    log(f"validation on the packages {', '.join(held)}: {len(data.val_ids)} functions")


def greedy_list_order(data: RankData) -> list[int]:
    """The lists in greedy coreset order on the training functions labelled under all of them: each adds the
    most beyond those before it; lists that add nothing keep their place after them."""
    from training.coreset import as_costs, greedy

    ids = data.train_ids[data.known[data.train_ids].all(axis=1)]
    order = [column for column, _ in greedy(as_costs(data.counts[ids]), data.oz[ids], data.counts.shape[1])]
    return order + [i for i in range(data.counts.shape[1]) if i not in order]


def batches(data: RankData, ids: np.ndarray, batch_tokens: int, rng: np.random.Generator, pool: int = 256):
    """Endless length-bucketed batches of at most `batch_tokens` padded tokens."""
    while True:
        order = rng.permutation(ids)
        groups = []
        for p in range(0, len(order), pool):
            chunk = sorted(order[p : p + pool], key=lambda i: data.length[i])
            batch: list[int] = []
            for index in chunk:
                longest = max([int(data.length[i]) for i in batch] + [int(data.length[index])])
                if batch and longest * (len(batch) + 1) > batch_tokens:
                    groups.append(batch)
                    batch = []
                batch.append(int(index))
            if batch:
                groups.append(batch)
        for position in rng.permutation(len(groups)):
            yield groups[position]


def collate(data: RankData, batch: list[int], pad: int):
    """inputs, count targets/weights (answer after the list token) and the position of `<|passes|>` per row."""
    import torch

    width = max(int(data.length[i]) for i in batch) - 1
    inputs = np.full((len(batch), width), pad, dtype=np.int64)
    targets = np.zeros((len(batch), width), dtype=np.int64)
    count_mask = np.zeros((len(batch), width), dtype=bool)
    sep = np.zeros(len(batch), dtype=np.int64)
    for row, index in enumerate(batch):
        seq = data.sequence(index).astype(np.int64)
        n = len(seq) - 1
        inputs[row, :n] = seq[:-1]
        targets[row, :n] = seq[1:]
        sep[row] = int(data.prompt_len[index]) - 1
        count_mask[row, sep[row] + 1 : n] = True  # after the list token: the counts and EOS
    return torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(count_mask), torch.from_numpy(sep)


def budget_gains(scores: np.ndarray, counts: np.ndarray, oz: np.ndarray, budgets=BUDGETS) -> dict[int, float]:
    """Gain under -Oz (% of total instructions) compiling each function's `b` best-scored lists, -Oz always measured."""
    costs = np.where(counts < 0, np.iinfo(np.int32).max, counts).astype(np.int64)  # FAILED or UNKNOWN: no gain
    order = np.argsort(-scores, axis=1, kind="stable")
    total = max(int(oz.sum()), 1)
    result = {}
    for b in budgets:
        chosen = np.take_along_axis(costs, order[:, :b], axis=1).min(axis=1)
        result[b] = round(100.0 * (total - int(np.minimum(chosen, oz).sum())) / total, 3)
    return result


def stored_order_gains(counts: np.ndarray, oz: np.ndarray) -> dict[int, float]:
    """`budget_gains` of compiling the lists in the order their columns are stored: the fixed order a model
    is measured against."""
    return budget_gains(np.tile(-np.arange(counts.shape[1], dtype=np.float32), (len(counts), 1)), counts, oz)


def hidden_states(model, ids):
    """The final normalized hidden states of `training.model.model.Llama` (its forward without the projection)."""
    t = ids.shape[1]
    cos, sin = model.rope_cos[:t], model.rope_sin[:t]
    x = model.embed(ids)
    for block in model.blocks:
        x = block(x, cos, sin, None)
    return model.norm(x)


def blended_scores(scores: np.ndarray, top: int) -> np.ndarray:
    """Scores whose descending order is `ranking.blended_order(scores, top)` (lists stored in greedy order)."""
    from lsp_server.model.ranking import blended_order

    out = np.zeros_like(scores)
    for row in range(len(scores)):
        for rank, index in enumerate(blended_order(scores[row].tolist(), top)):
            out[row, index] = -rank
    return out


def list_scores(model, data: RankData, ids: np.ndarray, list_ids, pad: int, device) -> np.ndarray:
    """The model's logits over the list tokens at `<|passes|>`, for each of `ids` (prompt only)."""
    import torch

    model.eval()
    out = np.zeros((len(ids), len(list_ids)), dtype=np.float32)
    order = np.argsort([data.prompt_len[i] for i in ids])
    with torch.no_grad():
        for p in range(0, len(order), 16):
            chunk = order[p : p + 16]
            width = max(int(data.prompt_len[ids[c]]) for c in chunk)
            inputs = np.full((len(chunk), width), pad, dtype=np.int64)
            for row, c in enumerate(chunk):
                n = int(data.prompt_len[ids[c]])
                inputs[row, :n] = data.sequence(ids[c])[:n]
            hidden = hidden_states(model, torch.from_numpy(inputs).to(device))
            weight = model.embed.weight if model.output is None else model.output.weight
            for row, c in enumerate(chunk):
                n = int(data.prompt_len[ids[c]])
                out[c] = (hidden[row, n - 1] @ weight[list_ids].t()).float().cpu().numpy()
    model.train()
    return out


def cmd_train(args) -> int:
    import torch
    import torch.nn.functional as F

    from .model import Llama

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = RankData(resolve(args.data))
    k = len(data.summary["lists"])
    base_hp, base_vocab, tensors = read_base(Path(data.summary["base"]))
    vocab = extended_vocab(base_vocab, k)
    layers = args.layers or base_hp.layers  # the first `--layers` blocks of the base: fewer is faster to train and to run
    hp = LlamaHParams(**{**base_hp.to_dict(), "vocab_size": len(vocab), "ctx": data.summary["ctx"], "layers": layers})
    device = torch.device(args.device)
    model = Llama(hp)
    load_weights(model, tensors, len(vocab) - base_hp.vocab_size)
    model.to(device)
    list_ids = torch.arange(base_hp.vocab_size, base_hp.vocab_size + k, device=device)
    pad = vocab.pad if vocab.pad is not None else 0
    out = resolve(args.out)
    out.mkdir(parents=True, exist_ok=True)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": other, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.95))
    hold_out_packages(data, args.val_packages)
    fixed = stored_order_gains(data.counts[data.val_ids], data.oz[data.val_ids])
    oracle = budget_gains(data.gains[data.val_ids], data.counts[data.val_ids], data.oz[data.val_ids])
    log(f"model {model.parameter_count() / 1e6:.2f}M parameters, {k} list tokens; {len(data.train_ids)} train / {len(data.val_ids)} val functions")
    log(f"validation, fixed coreset order: {fixed}; oracle order: {oracle}")
    targets = torch.from_numpy(data.targets)
    gains = torch.from_numpy(data.gains)
    known = torch.from_numpy(data.known.astype(np.float32))
    # The benchmark counts instructions: a function weighs by the square root of what its best list saves.
    if args.objective == "regress":  # as for a regression of per-instruction gains: larger functions weigh more
        size = data.oz.astype(np.float64) ** args.size_power
        weights = torch.from_numpy((size / max(float(size.mean()), 1e-6)).astype(np.float32))
    else:
        saved = np.sqrt(data.gains.max(axis=1) * data.oz)
        saved = saved / max(float(saved[data.improvable].mean()), 1e-6) if data.improvable.any() else saved
        weights = torch.from_numpy(np.where(data.improvable, saved, args.flat_weight).astype(np.float32))
    weights = weights * torch.from_numpy(data.package_weights(args.package_balance).astype(np.float32))
    rng = np.random.default_rng(args.seed)
    # Functions no list improves teach little about ranking: a share of them is kept (for the counts).
    flat = data.train_ids[~data.improvable[data.train_ids]]
    kept = np.concatenate([data.train_ids[data.improvable[data.train_ids]], rng.permutation(flat)[: int(len(flat) * args.flat_keep)]])
    log(f"training on {len(kept)} functions: every improvable one, {args.flat_keep:.0%} of the {len(flat)} that no list improves")
    stream = batches(data, np.sort(kept), args.batch_tokens, rng)
    config = {"hparams": hp.to_dict(), "lists": data.summary["lists"], "base": data.summary["base"], "data": str(resolve(args.data)),
              "base_vocab": base_hp.vocab_size, "val_packages": args.val_packages}
    history, best = [], None
    began = time.time()
    step = 0

    # Evaluations during training use a fixed share of the validation functions; the best checkpoint is then
    # measured on all of them.
    probe = np.sort(np.random.default_rng(1).permutation(data.val_ids)[: args.eval_functions or len(data.val_ids)])
    probe_fixed = stored_order_gains(data.counts[probe], data.oz[probe])
    log(f"evaluations on {len(probe)} validation functions (fixed coreset order there: {probe_fixed})")

    # An exponential moving average of the weights (`--ema`) is what is evaluated and saved: it ranks more
    # steadily from one evaluation to the next than the last step's weights.
    averaged = None
    if args.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema))
    kept_model = (lambda: averaged.module) if averaged is not None else (lambda: model)

    def evaluate(ids=probe) -> dict:
        scores = list_scores(kept_model(), data, ids, list_ids, pad, device)
        gains = budget_gains(scores, data.counts[ids], data.oz[ids])
        return {"step": step, "minutes": round((time.time() - began) / 60, 2), "val_gain": gains}

    def score_of(record: dict) -> float:
        return sum(record["val_gain"][b] for b in (1, 3, 10))

    record = evaluate()
    log("eval " + json.dumps(record))
    history.append(record)
    window = []
    model.train()
    while step < args.steps and (not args.max_minutes or (time.time() - began) / 60 < args.max_minutes):
        batch = next(stream)
        inputs, answer_targets, count_mask, sep = (t.to(device) for t in collate(data, batch, pad))
        progress = step / max(1, args.steps)
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        hidden = hidden_states(model, inputs)  # logits only where there is a loss: the vocabulary projection is most of the cost
        weight = model.embed.weight if model.output is None else model.output.weight
        rows = torch.arange(len(batch), device=device)
        rank_logits = (hidden[rows, sep] @ weight[list_ids].t()).float()
        index = torch.as_tensor(batch, device=device)
        if args.objective == "regress":  # each list token's logit predicts the list's gain under -Oz (x GAIN_SCALE)
            mask = known[index].to(device)
            rank_loss = (((rank_logits - GAIN_SCALE * gains[index].to(device)) ** 2) * mask).sum(-1) / mask.sum(-1).clamp(min=1)
        else:
            rank_loss = -(targets[index].to(device) * F.log_softmax(rank_logits, -1)).sum(-1)
        rank_loss = (rank_loss * weights[index].to(device)).sum() / weights[index].sum().clamp(min=1e-6)
        count_loss = F.cross_entropy((hidden[count_mask] @ weight.t()).float(), answer_targets[count_mask]) if count_mask.any() else hidden.sum() * 0
        loss = rank_loss + args.count_weight * count_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if averaged is not None:
            averaged.update_parameters(model)
        step += 1
        window.append((rank_loss.item(), count_loss.item()))
        if step % args.log_every == 0:
            r, c = np.mean(window, axis=0)
            log(f"step {step} rank loss {r:.4f} count loss {c:.4f} lr {lr:.2e} {(time.time() - began) / 60:.1f} min")
            window = []
        if step % args.eval_every == 0:
            record = evaluate()
            log("eval " + json.dumps(record))
            history.append(record)
            if best is None or score_of(record) > score_of(best):
                best = record
                torch.save({"model": kept_model().state_dict(), "config": config, "step": step}, out / "best.pt")
    record = evaluate()
    log("eval " + json.dumps(record))
    history.append(record)
    if best is None or score_of(record) > score_of(best):
        best = record
        torch.save({"model": kept_model().state_dict(), "config": config, "step": step}, out / "best.pt")
    state = torch.load(out / "best.pt", map_location=device, weights_only=False)
    kept_model().load_state_dict(state["model"])
    step = state["step"]
    best = evaluate(data.val_ids)
    log("best checkpoint on all validation functions: " + json.dumps(best))
    write_json(out / "train.json", {"fixed_coreset_order": fixed, "oracle_order": oracle, "best": best, "history": history,
                                    "probe_fixed_coreset_order": probe_fixed,
                                    "settings": {k2: str(v) if isinstance(v, Path) else v for k2, v in vars(args).items() if k2 != "func"}})
    log(f"best checkpoint: step {best['step']}, validation gain {best['val_gain']} (fixed coreset order {fixed})")
    return 0


# --------------------------------------------------------------------------------------------- export


def gguf_gains(path: Path, data: RankData, ids: np.ndarray, names: Sequence[str], threads: int) -> dict[int, float] | None:
    """Gains on `ids` of a ranking GGUF as llama.cpp runs it (its stored list order and `top`), read from the
    labels (`names`: the list of each column of `data.counts`); None when it ranks other lists."""
    from lsp_server.model import load_proposer

    proposer = load_proposer(path, threads=threads)
    try:
        lists = getattr(proposer, "lists", None)
        if lists is None or sorted(lists) != sorted(names):
            return None
        columns = [list(names).index(text) for text in lists]
        raw = np.asarray([proposer.prompt_scores(data.prompt(int(index))) for index in ids], dtype=np.float32)
        top = proposer.top
    finally:
        proposer.close()
    return budget_gains(blended_scores(raw, top), data.counts[ids][:, columns], data.oz[ids])


def cmd_export(args) -> int:
    import torch

    from lsp_server.model import load_proposer

    from .gguf_llama import quantize, write_llama_gguf
    from .model import Llama

    torch.set_num_threads(args.threads)
    run = resolve(args.run)
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    config = state["config"]
    hp = LlamaHParams(**config["hparams"])
    model = Llama(hp)
    model.load_state_dict(state["model"])
    model.eval()
    _, base_vocab, _ = read_base(Path(config["base"]))
    vocab = extended_vocab(base_vocab, len(config["lists"]))
    data = RankData(Path(config["data"]))
    hold_out_packages(data, config.get("val_packages", ""))
    list_ids = torch.arange(config["base_vocab"], config["base_vocab"] + len(config["lists"]))
    # The file stores the lists in greedy order on the training labels (their token rows move with them): after
    # the model's best picks the runtime follows that order, where each list adds the most beyond those before.
    order = greedy_list_order(data)
    lists = [config["lists"][i] for i in order]
    with torch.no_grad():
        for table in (model.embed.weight, None if model.output is None else model.output.weight):
            if table is not None:
                table[list_ids] = table[list_ids[order]].clone()
    coreset_order = stored_order_gains(data.counts[data.val_ids], data.oz[data.val_ids])  # the training order: coreset.txt first
    data.counts = data.counts[:, order]
    log(f"lists stored in greedy order on the training functions: {order[:10]} ...")
    # How many best-scored lists lead before that order takes over: chosen on the validation functions.
    val_scores = list_scores(model, data, data.val_ids, list_ids, vocab.pad or 0, "cpu")
    fixed = stored_order_gains(data.counts[data.val_ids], data.oz[data.val_ids])
    blends = {}
    for top in (1, 2, 3, 5, 0):
        blends[top] = budget_gains(blended_scores(val_scores, top), data.counts[data.val_ids], data.oz[data.val_ids])
        log(f"validation ({len(data.val_ids)} functions), best {top or 'all'} by score, then the greedy order: {blends[top]}")
    top = max(blends, key=lambda t: (sum(blends[t][b] for b in (1, 3, 10)), -t))
    log(f"chosen: the best {top or 'all'} by score lead (the greedy order alone: {fixed})")
    out = resolve(args.out)
    f32 = out.with_name(out.stem + "-f32.gguf")
    # llama.cpp's smallest context is 256: a smaller `llama.context_length` makes it warn on every load. The
    # trained context goes in RANKING_CONTEXT_KEY, and the runtime cuts prompts to it.
    stored = LlamaHParams(**{**hp.to_dict(), "ctx": max(hp.ctx, LLAMA_MIN_CONTEXT)})
    write_llama_gguf(f32, stored, model.gguf_tensors(), vocab, name=args.name,
                     extra_strings={"passpilot.format": "2", "passpilot.profile": "passpilot", RANKING_LISTS_KEY: json.dumps(lists),
                                    RANKING_TOP_KEY: str(top), RANKING_CONTEXT_KEY: str(hp.ctx)})
    quantize(f32, out, "Q8_0", threads=args.threads)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB Q8_0, step {state['step']}, {len(lists)} lists)")

    # llama.cpp against PyTorch on validation functions: the same top list, and the same top 3.
    ids = data.val_ids[: args.check]
    torch_scores = val_scores[: len(ids)]
    report = {"step": state["step"], "file": str(out), "lists": len(lists), "top": top, "validation_functions": int(len(data.val_ids)),
              "fixed_coreset_order": coreset_order, "fixed_greedy_order": fixed, "blends": {str(t): g for t, g in blends.items()}, "chosen": blends[top]}
    for kind, path in (("F32", f32), ("Q8_0", out)):
        proposer = load_proposer(path, threads=args.threads)
        top1 = top3 = 0
        for row, index in enumerate(ids):
            got = np.asarray(proposer.prompt_scores(data.prompt(int(index))))
            want = torch_scores[row]
            top1 += int(got.argmax() == want.argmax())
            top3 += set(np.argsort(-got)[:3]) == set(np.argsort(-want)[:3])
        proposer.close()
        report[kind] = {"functions": len(ids), "same_top_list": round(top1 / max(len(ids), 1), 3), "same_top3": round(top3 / max(len(ids), 1), 3)}
        log(f"{kind}: llama.cpp and PyTorch agree on the top list for {top1}/{len(ids)} validation functions, on the top 3 for {top3}")
    # The file as shipped (Q8_0, through llama.cpp) against the model it would replace, on the same functions.
    report["exported_llama_cpp"] = gguf_gains(out, data, data.val_ids, lists, args.threads)
    incumbent = resolve(args.incumbent) if args.incumbent else None
    report["incumbent"] = gguf_gains(incumbent, data, data.val_ids, lists, args.threads) if incumbent and incumbent.exists() else None
    log(f"held out, through llama.cpp: this export {report['exported_llama_cpp']}, the shipped model ({incumbent}) {report['incumbent']}")
    write_json(run / "export.json", report)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    lists = steps.add_parser("lists", help="write the lists file the model ranks")
    lists.add_argument("--coreset", type=Path, default=ROOT / "models" / "coreset.txt")
    lists.add_argument("--curve", type=Path, default=ROOT / "docs" / "bench" / "coreset-curve.json")
    lists.add_argument("--winners", type=Path, default=None, help="a label folder whose pool holds local-search winners to add")
    lists.add_argument("--max-winners", type=int, default=40)
    lists.add_argument("--out", type=Path, default=ROOT / "training" / "model" / "ranking-lists.txt")
    lists.set_defaults(func=cmd_lists)
    dataset = steps.add_parser("dataset")
    dataset.add_argument("--labels", default=str(ROOT / "data" / "labels"),
                         help="label folders, comma-separated (dense labels first; then e.g. a --lists pass of more functions)")
    dataset.add_argument("--corpus", type=Path, default=ROOT / "data" / "corpus")
    dataset.add_argument("--lists", type=Path, default=ROOT / "training" / "model" / "ranking-lists.txt",
                         help="the lists the model ranks: a coreset-format file or a coreset curve JSON (its greedy lists)")
    dataset.add_argument("--base", type=Path, default=ROOT / "models" / "passpilot.gguf", help="GGUF whose vocabulary and weights start the model")
    dataset.add_argument("--max-k", type=int, default=64, help="lists the model ranks")
    dataset.add_argument("--ctx", type=int, default=512)
    dataset.add_argument("--out", type=Path, default=RANK / "dataset")
    dataset.set_defaults(func=cmd_dataset)
    train = steps.add_parser("train")
    train.add_argument("--data", type=Path, default=RANK / "dataset")
    train.add_argument("--out", type=Path, default=RANK / "run")
    train.add_argument("--device", default="cpu")
    train.add_argument("--threads", type=int, default=2)
    train.add_argument("--steps", type=int, default=1500, help="length of the learning-rate schedule")
    train.add_argument("--max-minutes", type=float, default=45.0)
    train.add_argument("--batch-tokens", type=int, default=8192)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--warmup", type=int, default=30)
    train.add_argument("--weight-decay", type=float, default=0.05)
    train.add_argument("--objective", choices=("soft", "regress"), default="soft",
                       help="soft: cross-entropy against a softmax over the lists near the best; regress: each list's logit "
                            "predicts its gain under -Oz (weighted by -Oz's count ** --size-power)")
    train.add_argument("--count-weight", type=float, default=0.2)
    train.add_argument("--flat-weight", type=float, default=0.05, help="ranking weight of functions no list improves")
    train.add_argument("--flat-keep", type=float, default=0.25, help="share of the functions no list improves trained on")
    train.add_argument("--size-power", type=float, default=0.5,
                       help="--objective regress: a function weighs by its -Oz count ** this (1: as the benchmark's totals)")
    train.add_argument("--val-packages", default="", help="validate on these packages (comma-separated) and train on the others")
    train.add_argument("--package-balance", type=float, default=0.5,
                       help="0: every function weighs alike; 1: every package weighs alike (weights scale by package size ** -this)")
    train.add_argument("--layers", type=int, default=2, help="blocks kept from the base model (0: all)")
    train.add_argument("--eval-every", type=int, default=50)
    train.add_argument("--eval-functions", type=int, default=600, help="validation functions per evaluation during training (0: all)")
    train.add_argument("--log-every", type=int, default=10)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--ema", type=float, default=0.0, help="evaluate and keep an exponential moving average of the weights with this decay (0: the weights as trained)")
    train.set_defaults(func=cmd_train)
    export = steps.add_parser("export")
    export.add_argument("--run", type=Path, default=RANK / "run")
    export.add_argument("--out", type=Path, default=RANK / "passpilot.gguf")
    export.add_argument("--name", default="passpilot-rank")
    export.add_argument("--check", type=int, default=40)
    export.add_argument("--incumbent", default=str(ROOT / "models" / "passpilot.gguf"),
                        help="the shipped model, measured on the same held-out functions ('' : none)")
    export.add_argument("--threads", type=int, default=2)
    export.set_defaults(func=cmd_export)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
