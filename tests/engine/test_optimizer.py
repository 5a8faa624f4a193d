import stat
from dataclasses import dataclass

import pytest

from lsp_server.compiler import OptTool, load_vocabulary, run_opt
from lsp_server.engine import (
    Candidate,
    CoresetSource,
    ModelSource,
    Optimizer,
    RandomSearchSource,
    optimize_module,
    standalone_functions,
)
from lsp_server.ir import ModuleLayout, count_instructions


@pytest.fixture
def optimizer(opt_tool):
    vocabulary = load_vocabulary(opt_tool)
    coreset = CoresetSource(["sroa,early-cse,instcombine,simplifycfg,gvn,instcombine,simplifycfg,adce", "default<Oz>,default<Oz>"])
    engine = Optimizer(opt_tool, sources=[coreset, RandomSearchSource(vocabulary.names)], jobs=2)
    yield engine
    engine.close()


@pytest.fixture
def functions(example_text):
    return standalone_functions(example_text)[1]


def test_best_is_never_worse_than_oz_and_counts_are_real(optimizer, functions, opt_tool):
    results = optimizer.optimize_all(functions, budget=4, sources=["coreset", "search"])
    for result in results:
        assert result.best is not None and result.best.count <= result.oz.count
        reproduced = run_opt(opt_tool, result.best.passes, result.function.text)
        assert count_instructions(reproduced.output) == result.best.count
        oz = run_opt(opt_tool, "default<Oz>", result.function.text)
        assert count_instructions(oz.output) == result.oz.count
    assert any(r.best.count < r.oz.count for r in results), "the coreset beats -Oz somewhere in the example"


def test_budget_counts_opt_calls_beyond_oz(optimizer, functions):
    zero = optimizer.optimize(functions[0], budget=0, sources=["coreset", "search"])
    assert [m.source for m in zero.measurements] == ["oz"] and zero.best.source == "oz"
    three = optimizer.optimize(functions[0], budget=3, sources=["coreset", "search"])
    assert three.opt_calls == 3
    assert [m.source for m in three.measurements] == ["oz", "coreset", "coreset", "search"]


@dataclass
class _Proposal:
    passes: str
    predicted_before: int | None = None
    predicted_after: int | None = None
    note: str | None = None


class _ScriptedProposer:
    """Stands for a model's answers, including hostile ones; the engine must reject what is unsafe."""

    identity = "scripted"

    def propose(self, function_ir, samples, seed=0):
        return [
            _Proposal("--load-pass-plugin=/tmp/x.so"),
            _Proposal("instcombine -o /tmp/out"),
            _Proposal("sroa,instcombine,simplifycfg", 30, 12),
        ][:samples]


def test_model_proposals_are_checked_before_opt(opt_tool, functions):
    engine = Optimizer(opt_tool, sources=[ModelSource(_ScriptedProposer(), samples=3)], jobs=1)
    try:
        result = engine.optimize(functions[0], budget=3, sources=["model"])
    finally:
        engine.close()
    rejected = [m for m in result.measurements if m.rejected]
    assert len(rejected) == 2 and all(m.count is None for m in rejected)
    assert result.opt_calls == 1
    assert result.model_prediction.predicted_after == 12
    assert result.model_prediction.count is not None


def test_crashing_candidate_is_a_failed_measurement(tmp_path, opt_tool, functions):
    fake = tmp_path / "opt"
    fake.write_text("#!/bin/sh\ncat >/dev/null\nkill -ABRT $$\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    engine = Optimizer(OptTool(str(fake), opt_tool.version), vocabulary=load_vocabulary(opt_tool), jobs=1)
    try:
        result = engine.optimize(functions[0], budget=0, sources=[])
    finally:
        engine.close()
    assert result.best is None and "SIGABRT" in result.oz.error


def test_optimize_one_function_inside_module(optimizer, example_text, opt_tool):
    module = optimize_module(optimizer, example_text, names=["grade"], budget=2, sources=["coreset"])
    [outcome] = module.outcomes
    assert outcome.verified and outcome.applied is not None
    before, after = ModuleLayout.from_text(example_text), ModuleLayout.from_text(module.text)
    for span in before.functions:
        if span.name != "grade":
            assert after.function_text(after.function(span.name)) == before.function_text(span)
    grade = standalone_functions(module.text, ["grade"])[1][0]
    assert count_instructions(grade.text) == outcome.applied.count


def test_random_search_is_reproducible(opt_tool, functions):
    source = RandomSearchSource(load_vocabulary(opt_tool).names)
    first = [c.passes for c, _ in zip(source.candidates(functions[0], 5), range(5))]
    second = [c.passes for c, _ in zip(source.candidates(functions[0], 5), range(5))]
    assert first == second and len(set(first)) > 1
    assert all(isinstance(c, Candidate) for c in source.candidates(functions[0], 1))


def test_random_lists_are_valid_pipelines_for_opt(opt_tool, functions):
    """Module passes after function passes, or LICM without MemorySSA, would make opt reject a list."""
    engine = Optimizer(opt_tool, sources=[RandomSearchSource(load_vocabulary(opt_tool).names)], jobs=2)
    try:
        result = engine.optimize(functions[0], budget=40, sources=["search"])
    finally:
        engine.close()
    failures = [m.error for m in result.measurements if not m.ok]
    assert result.opt_calls == 40 and failures == []


def test_coreset_file_comments(tmp_path):
    path = tmp_path / "coreset.txt"
    path.write_text("# header\ninstcombine,simplifycfg  # -120\n\ndefault<Oz>\n")
    assert CoresetSource.from_file(path).pass_lists == ["instcombine,simplifycfg", "default<Oz>"]
