"""Ranking models (lsp_server/model/ranking.py) on a tiny real GGUF run by llama.cpp, and the engine's model
source filling the budget in the model's order."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lsp_server.compiler import find_opt, load_vocabulary
from lsp_server.engine import Optimizer, standalone_functions
from lsp_server.engine.sources import ModelSource
from lsp_server.model import ModelError, formats, load_proposer
from lsp_server.model.features import BUCKETS, FEATURE_NAMES, all_feature_tokens, bucket, feature_counts, feature_tokens
from lsp_server.model.ranking import (
    RANKING_CONTEXT_KEY,
    RANKING_LISTS_KEY,
    RANKING_TOP_KEY,
    RankingProposer,
    blended_order,
    list_token,
    RankingProfile,
)
from training.model.gguf_llama import CONTROL, LlamaHParams, Vocab, random_tensors, write_llama_gguf

from .conftest import TINY_CTX, _tiny_vocab

LISTS = [
    "sroa,instcombine,simplifycfg",
    "default<Oz>",  # -Oz is always measured: the engine never spends budget on it again
    "function(mem2reg,gvn),dce",
    "sroa, instcombine, simplifycfg",  # the first list again, spelled otherwise
    "gvn,bogus-pass",
    "module(mem2reg,dce)",
]

FUNCTION = """\
define i32 @f(i32 %x, i32 %y) {
entry:
  %a = alloca i32, align 4
  store i32 %x, ptr %a, align 4
  %v = load i32, ptr %a, align 4
  br label %head
head:
  %c = icmp slt i32 %v, %y
  br i1 %c, label %loop, label %done
loop:
  %w = add i32 %v, 1
  br label %head
done:
  ret i32 %v
}
"""


def _ranking_gguf(directory, lists, *, tokens: int | None = None, seed: int = 1, top: int | None = None, features: bool = True,
                  context: int | None = None):
    count = len(lists) if tokens is None else tokens
    base = _tiny_vocab(directory, "tiny-rank", list(formats.CONTROL_TOKENS))
    added = [*(list_token(i) for i in range(count)), *(all_feature_tokens() if features else [])]  # as training.model.ranker adds them
    vocab = Vocab(base.tokens + added, base.scores + [0.0] * len(added), base.types + [CONTROL] * len(added), base.bos, base.eos, base.unk, base.pad)
    hp = LlamaHParams(vocab_size=len(vocab), dim=32, layers=1, heads=2, kv_heads=2, ffn=64, ctx=TINY_CTX)
    extra = {RANKING_LISTS_KEY: json.dumps(lists), **({RANKING_TOP_KEY: str(top)} if top is not None else {}),
             **({RANKING_CONTEXT_KEY: str(context)} if context is not None else {})}
    return write_llama_gguf(directory / "tiny-rank.gguf", hp, random_tensors(hp, seed=seed), vocab, name="tiny-rank", extra_strings=extra)


@pytest.fixture(scope="module")
def ranking_gguf(tmp_path_factory):
    return _ranking_gguf(tmp_path_factory.mktemp("rank"), LISTS)


@pytest.fixture(scope="module")
def known():
    return load_vocabulary(find_opt()).names


def test_feature_counts_cover_the_whole_function():
    counts = feature_counts(formats.prompt_text(FUNCTION))
    assert counts["n"] == 9 and counts["blocks"] == 4 and counts["loops"] == 1 and counts["args"] == 2
    assert (counts["alloca"], counts["load"], counts["store"], counts["br"], counts["icmp"], counts["ret"]) == (1, 1, 1, 3, 1, 1)
    assert counts["add"] == 1 and counts["other"] == 0


def test_feature_tokens_are_log2_buckets_in_a_fixed_order():
    assert [bucket(v) for v in (0, 1, 2, 3, 4, 7, 8, 1000, 10**9)] == [0, 1, 2, 2, 3, 3, 4, 10, BUCKETS - 1]
    tokens = feature_tokens(formats.prompt_text(FUNCTION))
    assert len(tokens) == len(FEATURE_NAMES) == 31 and set(tokens) <= set(all_feature_tokens())
    assert tokens[:4] == ["<|f:n=4|>", "<|f:blocks=3|>", "<|f:loops=1|>", "<|f:args=2|>"]  # 9 instructions, 4 blocks


def test_the_prompt_is_bos_feature_tokens_ir_and_the_separator(ranking_gguf):
    proposer = load_proposer(ranking_gguf, threads=1)
    try:
        vocab = proposer._ensure_loaded()
        prompt = RankingProfile().prompt_tokens(FUNCTION, vocab)
        features = [vocab.special_token(t) for t in feature_tokens(formats.prompt_text(FUNCTION))]
        assert prompt[0] == vocab.bos and prompt[1 : 1 + len(features)] == features
        assert prompt[-1] == vocab.special_token(formats.SEP_TOKEN)
        assert prompt[1 + len(features) : -1] == vocab.tokenize(formats.prompt_text(FUNCTION), add_bos=False)
    finally:
        proposer.close()


def test_a_ranking_gguf_ranks_every_list_by_its_logit(ranking_gguf, known):
    proposer = load_proposer(ranking_gguf, known_passes=known, threads=1)
    try:
        assert isinstance(proposer, RankingProposer) and "ranks 6 lists" in proposer.identity
        scores, note = proposer.scores(FUNCTION)
        assert len(scores) == len(LISTS) and len(set(scores)) > 1
        ranked = proposer.rank(FUNCTION)
        by_score = [LISTS[i] for i in np.argsort(-np.asarray(scores), kind="stable")]
        assert [p.passes for p in ranked] == [p.replace(" ", "").replace(",bogus-pass", "") for p in by_score]
        bogus = next(p for p in ranked if p.passes == "gvn")
        assert bogus.note == "dropped unknown passes: bogus-pass"
        assert all(p.predicted_after is None for p in ranked[1:])
        assert proposer.rank(FUNCTION) == ranked  # deterministic
        assert [p.passes for p in proposer.propose(FUNCTION, samples=2)] == [p.passes for p in ranked[:2]]
    finally:
        proposer.close()


def test_too_long_function_is_ranked_from_its_head(ranking_gguf):
    proposer = load_proposer(ranking_gguf, threads=1)
    try:
        body = "".join(f"  %v{i} = add i32 %x, {i}\n" for i in range(400))
        ranked = proposer.rank(f"define i32 @g(i32 %x) {{\n{body}  ret i32 %x\n}}\n")
        assert len(ranked) == len(LISTS) and "function longer than the model's context" in ranked.note
        assert proposer.rank("this is not IR").note.startswith("could not build the model prompt")
    finally:
        proposer.close()


def test_missing_list_tokens_are_a_clear_error(tmp_path):
    path = _ranking_gguf(tmp_path, LISTS, tokens=2)
    proposer = load_proposer(path, threads=1)
    with pytest.raises(ModelError, match="lacks the tokens <\\|list2\\|>"):
        proposer.rank(FUNCTION)


def test_a_ranking_gguf_without_feature_tokens_is_a_clear_error(tmp_path):
    proposer = load_proposer(_ranking_gguf(tmp_path, LISTS, features=False), threads=1)
    with pytest.raises(ModelError, match="no feature tokens"):
        proposer.rank(FUNCTION)


def test_model_source_fills_the_budget_in_the_model_order_without_repeats(ranking_gguf, known):
    opt = find_opt()
    proposer = load_proposer(ranking_gguf, known_passes=known, threads=1)
    optimizer = Optimizer(opt, sources=[ModelSource(proposer, samples=1)], jobs=1)
    try:
        function = standalone_functions(FUNCTION)[1][0]
        vocabulary = optimizer.vocabulary
        expected = []
        for proposal in proposer.rank(function.text):
            checked = vocabulary.check(proposal.passes)
            if checked != "default<Oz>" and checked not in expected:
                expected.append(checked)
        assert len(expected) == 4  # six lists less the repeat of -Oz and the respelled repeat
        for budget in (1, 3, 4, 10):
            result = optimizer.optimize(function, budget=budget, sources=["model"])
            assert result.measurements[0].passes == "default<Oz>" and result.oz.ok
            measured = [m.passes for m in result.measurements[1:]]
            assert measured == expected[:budget]
            assert all(m.source == "model" for m in result.measurements[1:])
            assert result.best.count <= result.oz.count
    finally:
        optimizer.close()
        proposer.close()


def test_blended_order_leads_with_the_best_scored_then_keeps_the_stored_order(tmp_path, known):
    assert blended_order([0.1, 0.9, 0.5, 0.2], 1) == [1, 0, 2, 3]
    assert blended_order([0.1, 0.9, 0.5, 0.2], 2) == [1, 2, 0, 3]
    assert blended_order([0.1, 0.9, 0.5, 0.2], 0) == [1, 2, 3, 0]
    proposer = load_proposer(_ranking_gguf(tmp_path, LISTS, top=2), known_passes=known, threads=1)
    try:
        assert proposer.top == 2 and "its best 2, then the greedy order" in proposer.identity
        scores, _ = proposer.scores(FUNCTION)
        order = blended_order(scores, 2)
        assert [p.passes for p in proposer.rank(FUNCTION)] == [LISTS[i].replace(" ", "").replace(",bogus-pass", "") for i in order]
        assert order[2:] == sorted(order[2:])
    finally:
        proposer.close()


def test_prompts_are_cut_to_the_context_the_model_was_trained_on(tmp_path):
    proposer = load_proposer(_ranking_gguf(tmp_path, LISTS, context=100), threads=1)
    try:
        body = "".join(f"  %v{i} = add i32 %x, {i}\n" for i in range(60))
        ranked = proposer.rank(f"define i32 @g(i32 %x) {{\n{body}  ret i32 %x\n}}\n")
        assert proposer.n_ctx == 100 and len(ranked) == len(LISTS)
        budget = 100 - RankingProfile().max_answer_tokens
        assert f"it read the first {budget - 2} of" in ranked.note
    finally:
        proposer.close()
