"""The model PassPilot ships (models/passpilot.gguf), run by the real llama.cpp and checked by the real opt."""

from __future__ import annotations

import pytest

from lsp_server.compiler import load_vocabulary, run_opt
from lsp_server.engine import assemble, standalone_functions
from lsp_server.engine.factory import EngineSettings, resolve_model_path
from lsp_server.engine.sources import models_dir
from lsp_server.ir import count_instructions
from lsp_server.model import load_proposer
from lsp_server.model.ranking import RankingProposer

SHIPPED = models_dir() / "passpilot.gguf"


@pytest.fixture(scope="module")
def shipped_proposer(opt_tool):
    if not SHIPPED.is_file():
        pytest.fail(f"the shipped model is missing: {SHIPPED}")
    proposer = load_proposer(SHIPPED, known_passes=load_vocabulary(opt_tool).names)
    yield proposer
    proposer.close()


def test_shipped_model_is_the_default():
    assert resolve_model_path("") == SHIPPED
    assert resolve_model_path("none") is None
    assert SHIPPED.stat().st_size < 64 * 2**20


def test_shipped_model_proposes_valid_lists_that_opt_accepts(shipped_proposer, opt_tool, example_text):
    vocabulary = load_vocabulary(opt_tool)
    for function in standalone_functions(example_text)[1]:
        proposals = shipped_proposer.propose(function.text, samples=3)
        assert proposals, f"no proposal for @{function.name}: {proposals.note}"
        for index, proposal in enumerate(proposals):
            passes = vocabulary.check(proposal.passes)
            run = run_opt(opt_tool, passes, function.text)
            assert run.ok, run.error
            assert count_instructions(run.output) > 0
            if index == 0 or not isinstance(shipped_proposer, RankingProposer):  # a ranking model predicts for its top list
                assert proposal.predicted_before is not None and proposal.predicted_after is not None


def test_engine_uses_the_shipped_model_by_default(opt_tool, example_text, tmp_path):
    assembly = assemble(EngineSettings(cache_dir=str(tmp_path / "cache")))
    try:
        assert assembly.model_identity and "passpilot" in assembly.model_identity
        function = standalone_functions(example_text, ["weighted_sum"])[1][0]
        result = assembly.optimizer.optimize(function, budget=1, sources=["model"])
        model = [m for m in result.measurements if m.source == "model"]
        assert len(model) == 1 and model[0].ok
        assert result.best.count <= result.oz.count
    finally:
        assembly.optimizer.close()


def test_a_shipped_ranking_model_ranks_every_list_once_and_all_are_valid(shipped_proposer, opt_tool, example_text):
    if not isinstance(shipped_proposer, RankingProposer):
        pytest.skip("the shipped model generates its lists")
    vocabulary = load_vocabulary(opt_tool)
    for function in standalone_functions(example_text)[1]:
        ranked = shipped_proposer.rank(function.text)
        assert len(ranked) == len(shipped_proposer.lists), ranked.note
        assert len({vocabulary.check(p.passes) for p in ranked}) == len(ranked)
