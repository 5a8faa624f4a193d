"""`training.model.ranker train` end to end on a tiny base GGUF and a synthetic ranking dataset: it trains,
validates on held-out packages, and keeps the moving average of the weights when `--ema` is given."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.model.ranker import main, read_base  # noqa: E402

LISTS = ["function(sroa)", "function(instcombine)", "function(gvn)"]


def _dataset(directory, base) -> None:
    """Twelve functions in three packages: random prompt tokens of the base vocabulary, then the answer the
    dataset step writes (the best list's token, two count tokens, EOS)."""
    hp, vocab, _ = read_base(base)
    rng = np.random.default_rng(0)
    counts = rng.integers(5, 15, size=(12, len(LISTS))).astype(np.int32)
    oz = np.full(12, 12, dtype=np.int64)
    tokens, start, length, prompt_len, offset = [], [], [], [], 0
    for row in range(12):
        prompt = [vocab.bos, *rng.integers(3, hp.vocab_size, size=int(rng.integers(4, 9))).tolist()]
        answer = [hp.vocab_size + int(counts[row].argmin()), 5, 6, vocab.eos]
        tokens += prompt + answer
        start.append(offset)
        length.append(len(prompt) + len(answer))
        prompt_len.append(len(prompt))
        offset += len(prompt) + len(answer)
    np.savez(directory / "dataset.npz", tokens=np.asarray(tokens, dtype=np.int32), start=np.asarray(start, dtype=np.int64),
             length=np.asarray(length, dtype=np.int32), prompt_len=np.asarray(prompt_len, dtype=np.int32), counts=counts, oz=oz,
             original=np.full(12, 20, dtype=np.int32), val=np.zeros(12, dtype=bool), pkg=np.asarray(["pa", "pb", "pc"] * 4))
    (directory / "summary.json").write_text(json.dumps({"lists": LISTS, "ctx": 32, "base": str(base)}))


def _train(data, out, steps: int, *extra: str) -> dict:
    code = main(["train", "--data", str(data), "--out", str(out), "--steps", str(steps), "--eval-every", str(steps),
                 "--batch-tokens", "64", "--layers", "1", "--max-minutes", "0", "--threads", "1", "--warmup", "1",
                 "--flat-keep", "1", "--val-packages", "pc", *extra])
    assert code == 0
    return torch.load(out / "best.pt", map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def ranking_data(tiny_gguf, tmp_path_factory):
    directory = tmp_path_factory.mktemp("rank-data")
    _dataset(directory, tiny_gguf)
    return directory


def test_training_validates_on_held_out_packages_and_records_its_evaluations(ranking_data, tmp_path):
    state = _train(ranking_data, tmp_path / "run", 4)
    report = json.loads((tmp_path / "run" / "train.json").read_text())
    assert [record["step"] for record in report["history"]] == [0, 4, 4]
    assert state["step"] == 4 and state["config"]["val_packages"] == "pc"
    assert set(report["best"]["val_gain"]) == {"1", "3", "10", "30"}


def test_ema_keeps_the_average_of_the_weights_not_the_last_step(ranking_data, tmp_path):
    after_one = _train(ranking_data, tmp_path / "one", 1, "--ema", "0")["model"]
    raw = _train(ranking_data, tmp_path / "raw", 6, "--ema", "0")["model"]
    # With a decay this close to 1 the average stays where its first update put it: the weights after step 1.
    averaged = _train(ranking_data, tmp_path / "ema", 6, "--ema", "0.999999")["model"]
    name = "embed.weight"
    moved = (raw[name] - after_one[name]).abs().max().item()
    assert moved > 1e-4, "six steps must move the weights, or this test shows nothing"
    assert (averaged[name] - after_one[name]).abs().max().item() < moved / 100


def test_a_shipped_gguf_is_measured_in_its_own_list_order_on_the_labels(tmp_path):
    from training.model.ranker import RankData, gguf_gains

    from .test_ranking import _ranking_gguf

    from lsp_server.model import load_proposer
    from lsp_server.model.ranking import blended_order

    stored = ["function(gvn)", "function(sroa)", "function(instcombine)"]
    path = _ranking_gguf(tmp_path, stored, top=1)
    names = list(reversed(stored))  # the labels' columns in another order than the file's
    rng = np.random.default_rng(3)
    counts = rng.integers(6, 14, size=(10, 3)).astype(np.int32)
    prompts = [[1, *rng.integers(3, 300, size=6).tolist()] for _ in range(10)]
    tokens = [token for prompt in prompts for token in prompt]
    directory = tmp_path / "data"
    directory.mkdir()
    np.savez(directory / "dataset.npz", tokens=np.asarray(tokens, dtype=np.int32), start=np.arange(0, 70, 7, dtype=np.int64),
             length=np.full(10, 7, dtype=np.int32), prompt_len=np.full(10, 7, dtype=np.int32), counts=counts,
             oz=np.full(10, 12, dtype=np.int64), original=np.full(10, 20, dtype=np.int32), val=np.ones(10, dtype=bool),
             pkg=np.asarray(["p"] * 10))
    (directory / "summary.json").write_text(json.dumps({"lists": names, "ctx": 32}))
    data = RankData(directory)
    ids = np.arange(10)

    gains = gguf_gains(path, data, ids, names, threads=1)
    proposer = load_proposer(path, threads=1)
    firsts = [names.index(stored[blended_order(proposer.prompt_scores(prompt), 1)[0]]) for prompt in prompts]
    proposer.close()
    first_counts = np.minimum(counts[ids, firsts], 12)
    assert gains[1] == pytest.approx(round(100 * (120 - first_counts.sum()) / 120, 3))
    assert gains[3] == pytest.approx(round(100 * (120 - np.minimum(counts.min(axis=1), 12).sum()) / 120, 3))  # every list
    assert gguf_gains(path, data, ids, ["function(gvn)", "function(dce)", "function(sroa)"], threads=1) is None
