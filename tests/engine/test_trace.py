"""The pass explorer's engine: one `opt -print-changed` run per trace, and greedy minimization of a list.

Every count is checked against `opt` itself: the trace's last step is what `opt -passes=LIST` prints.
"""

from __future__ import annotations

import threading

import pytest

from lsp_server.compiler import OptTool, load_vocabulary, run_opt
from lsp_server.engine import OZ, Cancelled, CoresetSource, Optimizer, standalone_functions
from lsp_server.engine.trace import TraceError, minimize_passes, parse_dumps, split_pass_list, trace_passes
from lsp_server.ir import count_instructions

# sroa then simplifycfg beats -Oz on @weighted_sum and @grade of the example (see `passpilot optimize`).
WINNER = "sroa,instcombine<max-iterations=4;no-verify-fixpoint>,simplifycfg<no-speculate-blocks>,gvn,instcombine<no-verify-fixpoint>"  # as normalized


@pytest.fixture(scope="module")
def optimizer(opt_tool):
    engine = Optimizer(opt_tool, sources=[CoresetSource([WINNER])], jobs=2)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def functions(example_text):
    return {f.name: f for f in standalone_functions(example_text)[1]}


def test_every_step_is_counted_and_the_last_is_the_measured_best(optimizer, functions):
    results = optimizer.optimize_all(list(functions.values()), budget=1, sources=["coreset"])
    assert any(r.best.count < r.oz.count for r in results)
    for result in results:
        for measurement in (result.oz, result.best):
            trace = trace_passes(optimizer, result.function, measurement.passes)
            assert trace.original == count_instructions(result.function.text)
            assert trace.final == measurement.count, (result.name, measurement.passes)
            assert trace.steps, "every list changes these -O0 functions"
            before = trace.original_ir
            for step in trace.steps:
                assert step.count == count_instructions(step.ir)
                assert step.diff.startswith("--- before") and "\n+++ after" in step.diff
                removed = [l[1:] for l in step.diff.splitlines() if l.startswith("-") and not l.startswith("---")]
                added = [l[1:] for l in step.diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
                assert removed or added
                assert all(line in before.splitlines() for line in removed)
                assert all(line in step.ir.splitlines() for line in added)
                before = step.ir
            assert result.function.name in trace.steps[-1].ir


def test_the_last_step_is_what_opt_prints(optimizer, functions, opt_tool):
    function = functions["weighted_sum"]
    trace = trace_passes(optimizer, function, WINNER)
    reference = run_opt(opt_tool, WINNER, function.text)
    assert reference.ok
    assert trace.final == count_instructions(reference.output)
    body = lambda text: [l for l in text.splitlines() if l and not l.startswith(";")]  # noqa: E731
    assert body(trace.final_ir) == body(reference.output)


def test_passes_that_change_nothing_are_folded(optimizer, functions):
    trace = trace_passes(optimizer, functions["grade"], "sroa,sroa,sroa")
    assert [s.pass_name for s in trace.steps] == ["SROAPass"]
    assert trace.steps[0].target == "grade"
    assert trace.folded == 2
    oz = trace_passes(optimizer, functions["grade"], OZ)
    assert oz.folded > 10 and len(oz.steps) < oz.folded
    assert "changed nothing folded away" in oz.as_text()
    assert oz.as_text().count(";; ") == len(oz.steps)


def test_lists_are_checked_before_opt_runs(optimizer, functions):
    for bad in ("sroa,-load=/tmp/x.so", "print<domtree>", "sroa;rm"):
        with pytest.raises(TraceError, match="rejected"):
            trace_passes(optimizer, functions["grade"], bad)
        with pytest.raises(TraceError, match="rejected"):
            minimize_passes(optimizer, functions["grade"], bad)


def test_a_failing_opt_is_a_trace_error(opt_tool, functions, tmp_path):
    script = tmp_path / "opt-crash"
    script.write_text("#!/bin/sh\ncat >/dev/null; echo 'Stack dump:' >&2; kill -SEGV $$\n")
    script.chmod(0o755)
    engine = Optimizer(OptTool(str(script), opt_tool.version), vocabulary=load_vocabulary(opt_tool), jobs=1)
    try:
        with pytest.raises(TraceError, match="crashed"):
            trace_passes(engine, functions["grade"], "sroa")
    finally:
        engine.close()


def test_a_cancelled_trace_raises(optimizer, functions):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        trace_passes(optimizer, functions["count_words"], OZ, cancel=cancel)
    with pytest.raises(Cancelled):
        minimize_passes(optimizer, functions["count_words"], WINNER, cancel=cancel)


def test_minimized_list_keeps_the_count_and_no_element_can_go(optimizer, functions, opt_tool):
    function = functions["weighted_sum"]
    steps = []
    minimized = minimize_passes(optimizer, function, WINNER, progress=lambda done, total: steps.append((done, total)))
    full = run_opt(opt_tool, WINNER, function.text)
    short = run_opt(opt_tool, minimized.minimized, function.text)
    assert count_instructions(short.output) == count_instructions(full.output) == minimized.count
    elements = split_pass_list(minimized.minimized)
    assert len(elements) < len(split_pass_list(WINNER))
    original = split_pass_list(WINNER)
    assert sorted(elements + list(minimized.removed), key=original.index) == original  # a sub-list, in order
    for index in range(len(elements)):
        shorter = ",".join(elements[:index] + elements[index + 1 :])
        run = run_opt(opt_tool, shorter, function.text)
        assert count_instructions(run.output) != minimized.count, f"{elements[index]} could have gone too"
    assert minimized.measured >= len(original) and steps


def test_a_single_pipeline_cannot_shrink(optimizer, functions):
    minimized = minimize_passes(optimizer, functions["checksum"], OZ)
    assert minimized.minimized == OZ and minimized.removed == () and minimized.measured == 1


def test_split_pass_list_keeps_nested_elements_whole():
    assert split_pass_list("sroa,function(loop-mssa(licm),gvn),simplifycfg<a;b>,instcombine") == [
        "sroa",
        "function(loop-mssa(licm),gvn)",
        "simplifycfg<a;b>",
        "instcombine",
    ]


def test_parse_dumps_reads_headers_with_spaces_and_quiet_passes():
    output = "\n".join(
        [
            "*** IR Dump At Start ***",
            "define void @f() {",
            "  ret void",
            "}",
            "*** IR Dump After RequireAnalysisPass<llvm::GlobalsAA, llvm::Module> on [module] omitted because no change ***",
            "*** IR Pass PassManager<Function> on f ignored ***",
            "*** IR Dump After LICMPass on loop %<unnamed loop> in function f ***",
            "define void @f() {",
            "  ret void",
            "}",
            "",
        ]
    )
    start, changes, unchanged = parse_dumps(output)
    assert start == "define void @f() {\n  ret void\n}\n"
    assert changes == [("LICMPass", "loop %<unnamed loop> in function f", start)]
    assert unchanged == 1
