"""training.model.ranker: targets and budget figures from label counts (no model, no compiler)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")

from training.labels import FAILED  # noqa: E402
from training.model.ranker import budget_gains, list_gains, rank_targets  # noqa: E402


def test_gains_cap_at_oz_and_failures_gain_nothing():
    counts = np.array([[8, 12, FAILED], [10, 10, 10]])
    gains = list_gains(counts, np.array([10, 10]))
    np.testing.assert_allclose(gains, [[0.2, 0.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)


def test_targets_put_the_mass_near_the_best_list():
    targets = rank_targets(np.array([[0.20, 0.19, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32))
    assert targets.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert targets[0, 0] > targets[0, 1] > 10 * targets[0, 2]
    assert targets[1].tolist() == pytest.approx([1 / 3] * 3)  # nothing to learn: no preference


def test_budget_gains_compile_the_best_scored_lists_and_keep_oz():
    counts = np.array([[9, 7, 12], [20, 25, 18]])
    oz = np.array([10, 20])
    fixed = np.tile(-np.arange(3, dtype=np.float32), (2, 1))
    assert budget_gains(fixed, counts, oz, budgets=(1, 2, 3)) == {1: pytest.approx(100 / 30, abs=1e-3), 2: 10.0, 3: pytest.approx(500 / 30, abs=1e-3)}
    oracle = np.array([[0, 1, 0], [0, 0, 1]], dtype=np.float32)
    assert budget_gains(oracle, counts, oz, budgets=(1,)) == {1: pytest.approx(500 / 30, abs=1e-3)}
    failed = np.array([[FAILED, 7, 12], [20, 25, 18]])
    assert budget_gains(fixed, failed, oz, budgets=(1,)) == {1: 0.0}  # a failed list leaves -Oz


def test_ranking_lists_put_the_coreset_first_without_repeats_or_levels():
    from training.model.ranker import lists_to_rank

    coreset = ["sroa,gvn", "default<Os>", "mem2reg"]
    curve = ["default<O2>", "mem2reg", "instcombine", "sroa,gvn"]
    assert lists_to_rank(coreset, curve) == ["sroa,gvn", "mem2reg", "instcombine"]


def test_the_extended_vocabulary_numbers_list_then_feature_tokens_after_the_base():
    from lsp_server.model.features import all_feature_tokens
    from training.model.ranker import ExtendedVocabulary

    class Base:
        bos, eos = 1, 2

        def tokenize(self, text, *, add_bos, special=False):
            return [7] * len(text)

        def special_token(self, text):
            return 3 if text == "<|passes|>" else None

    vocab = ExtendedVocabulary(Base(), base_size=100, lists=4)
    assert vocab.special_token("<|list0|>") == 100 and vocab.special_token("<|list3|>") == 103
    assert vocab.special_token(all_feature_tokens()[0]) == 104
    assert vocab.special_token(all_feature_tokens()[-1]) == 104 + len(all_feature_tokens()) - 1
    assert vocab.special_token("<|passes|>") == 3 and vocab.special_token("<|list4|>") is None
    assert vocab.tokenize("abc", add_bos=False) == [7, 7, 7]


def _labels(pool, counts, hashes, kinds=None):
    from training.labels import Labels

    counts = np.asarray(counts, dtype=np.int32)
    return Labels(pool=list(pool), kinds=list(kinds or ["level"] * len(pool)), counts=counts, original=np.full(len(counts), 50, dtype=np.int32),
                  hashes=list(hashes), paths=[f"{h}.ll" for h in hashes], pkgs=["p"] * len(counts), compiler={})


def test_merged_labels_take_each_list_from_the_folder_that_measured_it():
    from training.model.ranker import UNKNOWN, merge_labels

    narrow = _labels(["default<Oz>", "a"], [[10, 8], [20, 21]], ["f1", "f2"])
    wide = _labels(["default<Oz>", "a", "b"], [[10, 9, 7]], ["f1"])
    merged = merge_labels([narrow, wide], ["a", "b"])
    assert merged["f1"]["counts"].tolist() == [8, 7]  # "a" from the first folder, "b" only the wide one has
    assert merged["f2"]["counts"].tolist() == [21, UNKNOWN]
    gains = list_gains(np.stack([merged["f2"]["counts"]]), np.array([20]))
    assert gains.tolist() == [[0.0, 0.0]]  # an unknown list gains nothing
    assert budget_gains(np.array([[0.0, 1.0]], dtype=np.float32), np.stack([merged["f2"]["counts"]]), np.array([20]), budgets=(1,)) == {1: 0.0}


def test_greedy_winners_add_what_removes_most_beyond_the_lists():
    from training.model.ranker import greedy_winners

    hashes = [f"{i:08x}" + "0" * 56 for i in (40, 41, 42)]  # not held out (int(h[:8], 16) % 100 >= 20)
    pool = ["default<Oz>", "a", "w1", "w2", "w3"]
    kinds = ["level", "coreset", "local", "local", "local"]
    counts = [[10, 9, 9, 5, 9], [10, 10, 8, 10, 10], [10, 10, 10, 10, 10]]
    labels = _labels(pool, counts, hashes, kinds)
    assert greedy_winners(labels, ["a"], 5) == ["w2", "w1"]  # w3 removes nothing
    assert greedy_winners(labels, ["a"], 1) == ["w2"]


def _rank_data(tmp_path, counts, oz, pkgs):
    """A ranking dataset folder as `ranker dataset` writes it (one-token prompts: only the labels matter here)."""
    from training.model.ranker import RankData

    n = len(counts)
    np.savez(tmp_path / "dataset.npz", tokens=np.ones(2 * n, dtype=np.int32), start=np.arange(0, 2 * n, 2, dtype=np.int64),
             length=np.full(n, 2, dtype=np.int32), prompt_len=np.ones(n, dtype=np.int32), counts=np.asarray(counts, dtype=np.int32),
             oz=np.asarray(oz, dtype=np.int64), original=np.asarray(oz, dtype=np.int32), val=np.zeros(n, dtype=bool),
             pkg=np.asarray(pkgs, dtype=str))
    (tmp_path / "summary.json").write_text('{"lists": ["a", "b"], "ctx": 16}')
    return RankData(tmp_path)


def test_whole_packages_are_held_out_and_packages_can_weigh_alike(tmp_path):
    from training.model.ranker import hold_out_packages

    data = _rank_data(tmp_path, [[9, 10]] * 6, [10] * 6, ["big", "big", "big", "big", "small", "other"])
    hold_out_packages(data, "small, other")
    assert data.val_ids.tolist() == [4, 5] and data.train_ids.tolist() == [0, 1, 2, 3]
    assert np.allclose(data.package_weights(0.0), 1.0)
    weights = data.package_weights(1.0)
    assert weights[:4].sum() == pytest.approx(weights[4]) == pytest.approx(weights[5])  # every package weighs alike
    with pytest.raises(SystemExit, match="no function of nowhere"):
        hold_out_packages(data, "nowhere")


def test_greedy_list_order_never_counts_a_failure_as_a_gain(tmp_path):
    from training.model.ranker import greedy_list_order

    # List "a" fails on most functions and removes one instruction elsewhere; "b" removes two on every function.
    counts = [[FAILED, 8]] * 5 + [[9, 8]]
    data = _rank_data(tmp_path, counts, [10] * 6, ["p"] * 6)
    assert greedy_list_order(data) == [1, 0]
