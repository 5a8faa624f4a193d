"""The `refine` source: edits of the best measured list, with the part of the budget it reserves."""

import pytest

from lsp_server.compiler import load_vocabulary, run_opt
from lsp_server.engine import CoresetSource, Measurement, Optimizer, standalone_functions
from lsp_server.engine.refine import Edit, RefineSource, read_edits
from lsp_server.ir import count_instructions


def test_edits_parse_and_print_back():
    for line in ("twice", "with-second", "second-then", "drop-first", "drop-last", "append gvn-sink,simplifycfg",
                 "prepend function(loop-mssa(licm))"):
        assert str(Edit.parse(line)) == line
    assert Edit.parse("  append   default<Oz>  ") == Edit("append", "default<Oz>")


@pytest.mark.parametrize(("line", "message"), [
    ("rotate", "unknown edit 'rotate'"),
    ("append", "needs one pass list"),
    ("prepend gvn sroa", "needs one pass list"),
    ("twice gvn", "takes no pass list"),
])
def test_bad_edits_say_what_is_wrong(line, message):
    with pytest.raises(ValueError, match=message):
        Edit.parse(line)


def test_a_bad_line_is_named_with_its_file_and_number(tmp_path):
    path = tmp_path / "refinements.txt"
    path.write_text("# edits\ntwice  # -10\n\nappend\n")
    with pytest.raises(ValueError, match=r"refinements.txt:4: edit 'append' needs"):
        read_edits(path)
    path.write_text("twice  # -10\nprepend mem2reg\n")
    assert read_edits(path) == [Edit("twice"), Edit("prepend", "mem2reg")]
    assert RefineSource.from_file(tmp_path / "missing.txt").edits == []


def test_edits_rewrite_the_best_list_at_the_top_level():
    best, second = "module(sroa,gvn)", "default<Oz>,dce"
    assert Edit("twice").apply(best, second) == "module(sroa,gvn,sroa,gvn)"
    assert Edit("with-second").apply(best, second) == "module(sroa,gvn,default<Oz>,dce)"
    assert Edit("second-then").apply(best, second) == "default<Oz>,dce,sroa,gvn"
    assert Edit("with-second").apply(best, None) is None
    assert Edit("drop-first").apply(best, None) == "module(gvn)"
    assert Edit("drop-last").apply("module(sroa)", None) is None  # nothing left to run
    assert Edit("append", "instcombine,simplifycfg").apply(second, None) == "default<Oz>,dce,instcombine,simplifycfg"
    assert Edit("prepend", "mem2reg").apply("default<Oz>", None) == "module(mem2reg,default<Oz>)"


def test_reserve_is_what_the_budget_has_beyond_the_first_lists_up_to_the_edits():
    source = RefineSource([Edit("twice"), Edit("with-second"), Edit("drop-first")])
    assert [source.reserve(budget) for budget in (0, 1, 3, 6, 7, 8, 10, 30)] == [0, 0, 0, 0, 1, 2, 3, 3]
    assert [RefineSource([Edit("twice")] * 20).reserve(budget) for budget in (20, 30)] == [14, 20]


def test_refinements_edit_the_best_valid_measurement_and_the_runner_up():
    source = RefineSource([Edit("twice"), Edit("with-second")])
    measured = [
        Measurement("default<Oz>", "oz", 12),
        Measurement("module(gvn)", "coreset", 10),
        Measurement("module(dce)", "coreset", None, "crashed"),
        Measurement("module(sroa)", "model", 9),
    ]
    edits = list(source.refinements(measured))
    assert [c.passes for c in edits] == ["module(sroa,sroa)", "module(sroa,gvn)"]
    assert all(c.source == "refine" for c in edits) and "(model)" in edits[0].note
    assert list(source.refinements([Measurement("module(dce)", "coreset", None, "crashed")])) == []


@pytest.fixture
def functions(example_text):
    return standalone_functions(example_text)[1]


def test_the_optimizer_measures_edits_of_each_functions_best_list_within_the_budget(opt_tool, functions):
    coreset = CoresetSource(["module(sroa)", "module(mem2reg)", "module(sroa,instcombine<no-verify-fixpoint>)", "module(gvn)", "module(dce)"])  # as normalized
    refine = RefineSource([Edit("twice"), Edit("prepend", "no-such-pass"), Edit("append", "simplifycfg"), Edit("with-second")],
                          first_lists=3)
    optimizer = Optimizer(opt_tool, sources=[coreset, refine], vocabulary=load_vocabulary(opt_tool), jobs=2)
    try:
        results = optimizer.optimize_all(functions, budget=5, sources=["coreset", "refine"])
        for result in results:
            # 3 coreset lists first, then 2 new edits of the best of them (and of -Oz).
            assert result.opt_calls == 5
            first = [m for m in result.measurements if m.source in ("oz", "coreset")]
            assert [m.passes for m in first[1:]] == coreset.pass_lists[:3]
            edits = [m for m in result.measurements if m.source == "refine"]
            assert [c.passes for c in refine.refinements(first)][:3] == [m.passes for m in edits]
            assert [m.rejected for m in edits] == [False, True, False]  # an unknown pass never reaches opt
            for measurement in (edits[0], edits[2]):
                run = run_opt(opt_tool, measurement.passes, result.function.text)
                assert measurement.count == count_instructions(run.output)
            assert result.best.count == min(m.count for m in result.measurements if m.ok)

        # Without the coreset, edits of -Oz fill the budget up to their number (`with-second` has no
        # runner-up to use); without `refine`, there are none.
        alone = optimizer.optimize(functions[0], budget=10, sources=["refine"])
        assert alone.opt_calls == 2 and all(m.source in ("oz", "refine") for m in alone.measurements)
        assert alone.measurements[1].passes == "default<Oz>,default<Oz>"
        plain = optimizer.optimize(functions[0], budget=5, sources=["coreset"])
        assert plain.opt_calls == 5 and all(m.source != "refine" for m in plain.measurements)
    finally:
        optimizer.close()


def test_an_edit_that_repeats_a_measured_list_is_skipped(opt_tool, functions):
    coreset = CoresetSource(["module(sroa)", "module(sroa,sroa)"])
    refine = RefineSource([Edit("twice"), Edit("drop-first"), Edit("append", "gvn")], first_lists=2)
    optimizer = Optimizer(opt_tool, sources=[coreset, refine], jobs=1)
    try:
        # Both coreset lists give the same count: the shorter one, module(sroa), is the best; its `twice`
        # is the second coreset list, so the next edits are measured instead.
        result = optimizer.optimize(functions[0], budget=4, sources=["coreset", "refine"])
        passes = [m.passes for m in result.measurements]
        assert len(passes) == len(set(passes)) and result.opt_calls <= 4
    finally:
        optimizer.close()


def test_a_broken_refinements_file_is_a_warning_not_a_crash(opt_tool, tmp_path, monkeypatch):
    from lsp_server.engine import EngineSettings, assemble

    (tmp_path / "coreset.txt").write_text("module(sroa)\n")
    (tmp_path / "refinements.txt").write_text("twice\nshuffle everything\n")
    monkeypatch.setenv("PASSPILOT_MODELS", str(tmp_path))
    assembly = assemble(EngineSettings(model_path="none", use_cache=False), opt_tool)
    try:
        assert any("refinements.txt:2: unknown edit 'shuffle'" in w for w in assembly.warnings)
        assert assembly.optimizer.sources["refine"].edits == []
        assert assembly.optimizer.sources["coreset"].pass_lists == ["module(sroa)"]
    finally:
        assembly.optimizer.close()
