"""The deep search with the real compiler: bounds, reproducibility, cancel, bad candidates, progress."""

import threading
import time

import pytest

from lsp_server.compiler import load_vocabulary, open_backend, run_opt
from lsp_server.engine import Cancelled, CoresetSource, ModelSource, Optimizer, standalone_functions, write_back
from lsp_server.engine.deep import DeepOptions, DeepSearch, render, top_level_elements
from lsp_server.ir import count_instructions


# Two lists of the shipped coreset's kind, fixed here so that the tests do not follow models/coreset.txt.
STARTING_LISTS = [
    "sroa,early-cse,instcombine,simplifycfg,gvn,instcombine,simplifycfg,adce",
    "default<Oz>,dce,sink,sroa,gvn-sink,called-value-propagation,simplifycfg",
]


@pytest.fixture
def make_optimizer(opt_tool):
    made = []

    def make(coreset: CoresetSource | None = None) -> Optimizer:
        engine = Optimizer(
            opt_tool,
            sources=[coreset or CoresetSource(STARTING_LISTS)],
            vocabulary=load_vocabulary(opt_tool),
            jobs=2,
            backend=open_backend("auto", opt_tool, workers=2),
        )
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


@pytest.fixture(scope="module")
def functions(example_text):
    return {f.name: f for f in standalone_functions(example_text)[1]}


def test_winner_is_never_worse_than_oz_and_opt_reproduces_it(make_optimizer, functions, opt_tool, example_text):
    optimizer = make_optimizer()
    with DeepSearch(optimizer, DeepOptions(seconds=60, calls=120, seed=1)) as deep:
        results = deep.optimize_all(list(functions.values()))
    for result in results:
        assert result.best is not None and result.best.count <= result.oz.count
        assert result.tried <= 120 and result.opt_calls == result.tried
        reproduced = run_opt(opt_tool, result.best.passes, result.function.text)
        assert reproduced.ok and count_instructions(reproduced.output) == result.best.count
        assert count_instructions(result.best.output) == result.best.count  # what write-back splices in
        assert count_instructions(run_opt(opt_tool, "default<Oz>", result.function.text).output) == result.oz.count
        assert result.improvements[0].source == "oz" and result.improvements[-1].count == result.best.count
    assert any(r.best.count < r.oz.count for r in results)
    assert any(r.winner_source.startswith("search (refined from") for r in results), [r.winner_source for r in results]
    module = write_back(optimizer, example_text, results)
    assert all(outcome.verified for outcome in module.outcomes)
    assert count_instructions(module.text) == sum(r.best.count for r in results)


def test_call_bound_is_kept_and_the_search_is_reproducible_for_a_seed(make_optimizer, functions):
    optimizer = make_optimizer()
    runs = {}
    for seed in (7, 7, 8):
        with DeepSearch(optimizer, DeepOptions(seconds=60, calls=90, seed=seed, batch=8)) as deep:
            result = deep.search(functions["weighted_sum"])
        assert result.tried == 90 and result.stopped == "calls"
        runs.setdefault(seed, []).append(result)
    first, again = runs[7]
    assert [m.passes for m in first.measurements] == [m.passes for m in again.measurements]
    assert [m.count for m in first.measurements] == [m.count for m in again.measurements]
    assert first.best.passes == again.best.passes
    other = runs[8][0]
    assert [m.passes for m in other.measurements] != [m.passes for m in first.measurements]
    passes = [m.passes for m in first.measurements]
    assert len(passes) == len(set(passes)), "no list is measured twice"


def test_cancel_stops_promptly_and_keeps_the_best_so_far(make_optimizer, functions):
    optimizer = make_optimizer()
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    with DeepSearch(optimizer, DeepOptions(seconds=120)) as deep:
        started = time.monotonic()
        timer.start()
        result = deep.search(functions["weighted_sum"], cancel=cancel)
        elapsed = time.monotonic() - started
    assert result.stopped == "cancelled" and elapsed < 3.0
    assert result.best is not None and result.best.count <= result.oz.count and result.best.output is not None
    with DeepSearch(optimizer, DeepOptions(seconds=120)) as deep, pytest.raises(Cancelled):
        deep.search(functions["weighted_sum"], cancel=cancel)  # cancelled before -Oz: nothing to return


def test_bad_candidates_never_stop_the_search(make_optimizer, functions):
    hostile = CoresetSource(
        [
            "--load-pass-plugin=/tmp/x.so",  # a flag: rejected by the vocabulary
            "no-such-pass",  # rejected by the vocabulary
            "module(licm)",  # a known pass that LLVM aborts on (LICM needs MemorySSA)
            "module(function(inline))",  # opt refuses the pipeline
            "sroa,instcombine,simplifycfg",
        ]
    )
    optimizer = make_optimizer(hostile)
    with DeepSearch(optimizer, DeepOptions(seconds=60, calls=40)) as deep:
        result = deep.search(functions["weighted_sum"])
    by_list = {m.passes: m for m in result.measurements}
    assert by_list["--load-pass-plugin=/tmp/x.so"].rejected and by_list["no-such-pass"].rejected
    assert by_list["module(licm)"].count is None and "MemorySSA" in by_list["module(licm)"].error
    assert by_list["module(function(inline))"].count is None
    assert result.tried == 40 and result.stopped == "calls"  # rejections cost no call; failures do
    assert result.best is not None and result.best.count <= result.oz.count


def test_progress_is_reported_after_each_batch(make_optimizer, functions):
    optimizer = make_optimizer()
    reports = []
    with DeepSearch(optimizer, DeepOptions(seconds=60, calls=64, batch=16)) as deep:
        result = deep.search(functions["grade"], progress=lambda tried, best, seconds: reports.append((tried, best, seconds)))
    assert [tried for tried, _, _ in reports] == [16, 32, 48, 64]
    assert all(a[1] >= b[1] and a[2] <= b[2] for a, b in zip(reports, reports[1:]))
    assert reports[-1][1] == result.best.count


def test_time_bound_ends_the_search(make_optimizer, functions):
    optimizer = make_optimizer()
    with DeepSearch(optimizer, DeepOptions(seconds=0.4, patience=10**9)) as deep:
        started = time.monotonic()
        result = deep.search(functions["weighted_sum"])
    assert result.stopped == "deadline" and time.monotonic() - started < 2.0
    assert result.tried > 0 and result.best.count <= result.oz.count


def test_elements_round_trip_through_render():
    for pipeline in ("sroa,function(loop-mssa(licm)),gvn", "module(default<Oz>,instcombine<max-iterations=4>)", "default<Oz>,dce"):
        elements = top_level_elements(pipeline)
        assert top_level_elements(render(elements)) == elements
    assert top_level_elements("sroa,function(loop-mssa(licm)),gvn") == ("sroa", "function(loop-mssa(licm))", "gvn")
    assert render(("default<Oz>", "dce")) == "default<Oz>,dce" and render(("dce", "default<Oz>")) == "module(dce,default<Oz>)"


class _CountingProposer:
    """The real model, with a record of the seeds it was asked to sample with."""

    def __init__(self, proposer):
        self.proposer = proposer
        self.seeds = []

    def propose(self, function_ir, samples, seed=0):
        self.seeds.append(seed)
        return self.proposer.propose(function_ir, samples, seed=seed)


def test_model_proposals_come_first_and_more_samples_are_asked_for(opt_tool, functions):
    from lsp_server.engine.factory import EngineSettings, load_model_source
    from lsp_server.model.ranking import RankingProposer

    vocabulary = load_vocabulary(opt_tool)
    shipped, _, warnings = load_model_source(EngineSettings(samples=2), vocabulary.names)
    if shipped is None:
        pytest.skip(f"the shipped model does not load here: {warnings}")
    proposer = _CountingProposer(shipped.proposer)
    model = ModelSource(proposer, samples=2)
    coreset = CoresetSource([*STARTING_LISTS, "module(mem2reg,instcombine,gvn-sink,simplifycfg,gvn)", "default<O1>"])
    backend = open_backend("auto", opt_tool, workers=2)
    optimizer = Optimizer(opt_tool, sources=[model, coreset], vocabulary=vocabulary, jobs=2, backend=backend)
    try:
        with DeepSearch(optimizer, DeepOptions(seconds=120, calls=300, patience=10**9, seed=4)) as deep:
            result = deep.search(functions["grade"])
    finally:
        optimizer.close()
    sources = [m.source for m in result.measurements]
    first = sources.index("coreset")
    assert sources[0] == "oz" and first >= 2 and set(sources[1:first]) == {"model"}
    predicted = [m.predicted_after is not None for m in result.measurements[1:first]]
    ranks = isinstance(shipped.proposer, RankingProposer)  # a ranking model predicts counts for its top list only
    assert predicted[0] and (ranks or all(predicted))
    assert len(proposer.seeds) >= 2 and len(set(proposer.seeds)) == len(proposer.seeds), "later rounds sample anew"


def test_many_starting_lists_share_batches_with_refinement(make_optimizer, functions, opt_tool):
    """A ranking model may order hundreds of lists: after the first 32, refinement gets half of each batch."""
    from lsp_server.engine import RandomSearchSource

    function = functions["grade"]
    lists = [c.passes for c, _ in zip(RandomSearchSource(load_vocabulary(opt_tool).names, seed=9).candidates(function, 80), range(80))]
    optimizer = make_optimizer(CoresetSource(lists))
    with DeepSearch(optimizer, DeepOptions(seconds=60, calls=64, batch=16)) as deep:
        result = deep.search(function)
    sources = [m.source for m in result.measurements[1:]]
    assert set(sources[:32]) == {"coreset"}
    assert sources[32:48].count("coreset") == 8
