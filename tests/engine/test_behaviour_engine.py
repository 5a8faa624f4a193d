"""The engine's behaviour check: a miscompiling `opt` or a faulty splice never reaches the written module."""

from __future__ import annotations

import re

import pytest

from lsp_server.compiler import find_opt, verify
from lsp_server.compiler.behaviour import BehaviourOptions, find_clang
from lsp_server.engine import CoresetSource, Optimizer, standalone_functions, write_back
from lsp_server.engine.behaviour import MISCOMPILE, OZ_NOT_CHECKED, SPLICE_BUG, RewriteChecker, spliced_module, write_back_checked
from lsp_server.ir import ModuleLayout, function_instruction_counts, parse

pytestmark = pytest.mark.skipif(find_clang() is None, reason="clang-22 is not installed")

SOURCE = """
int grade(int score) {
  switch (score / 10) {
  case 10: case 9: return 4;
  case 8: return 3;
  case 7: return 2;
  case 6: return 1;
  default: return 0;
  }
}
int passed(int score) { return grade(score) > 0; }
"""
# Written as normalized (InstCombine without its fixpoint check, compiler/passes.py), so measured lists equal them.
WITH_GVN = "sroa,early-cse,instcombine<no-verify-fixpoint>,simplifycfg,gvn,instcombine<no-verify-fixpoint>,simplifycfg,adce"  # 8 instructions for grade (-Oz: 10)
WITHOUT_GVN = "mem2reg,instcombine<no-verify-fixpoint>,simplifycfg"  # 8 as well


@pytest.fixture
def module(compile_c) -> str:
    return compile_c(SOURCE)


def engine(opt_path: str, lists: list[str]) -> Optimizer:
    return Optimizer(find_opt(opt_path), sources=[CoresetSource(lists)], jobs=2)


def optimize(optimizer: Optimizer, text: str, names=None):
    _, functions = standalone_functions(text, names)
    return optimizer.optimize_all(functions, budget=len(optimizer.sources["coreset"].pass_lists), sources=["coreset"])


OPTIONS = BehaviourOptions(trials=100)


def test_an_opt_that_replaces_bodies_with_unreachable_is_not_written_back(miscompiling_opt, module):
    optimizer = engine(miscompiling_opt(), [WITH_GVN, WITHOUT_GVN])
    try:
        results = optimize(optimizer, module, ["grade"])
        grade = results[0]
        assert grade.best.count == 1 < grade.oz.count  # what PassPilot accepted before this check
        unchecked = write_back(optimizer, module, results)
        assert "unreachable" in ModuleLayout.from_text(unchecked.text).function_text(ModuleLayout.from_text(unchecked.text).function("grade"))
        with RewriteChecker(optimizer, OPTIONS) as checker:
            verdict = checker.verdict(module, grade)
            written = write_back_checked(optimizer, module, results, [verdict])
    finally:
        optimizer.close()
    assert verdict.status == "blocked"
    assert [b.diagnosis for b in verdict.blocked] == [MISCOMPILE, MISCOMPILE]  # both lists were faked
    assert all(b.stage == "standalone" and b.check.status == "different" for b in verdict.blocked)
    assert "rewrite: crashed" in verdict.blocked[0].check.counterexample
    assert verdict.write is grade.oz and verdict.fallback == "-Oz was written instead"
    assert verdict.summary().startswith("blocked: different results on input @grade(i32 ")
    layout = ModuleLayout.from_text(written.text)
    assert "unreachable" not in layout.function_text(layout.function("grade"))
    assert function_instruction_counts(parse(written.text))["grade"] == grade.oz.count
    assert verify(find_opt(), written.text).ok
    assert written.outcomes[0].applied is grade.oz


def test_a_miscompiling_pass_list_falls_back_to_the_next_best_that_checks(miscompiling_opt, module):
    optimizer = engine(miscompiling_opt("  ret i32 0", "gvn"), [WITH_GVN, WITHOUT_GVN])
    try:
        results = optimize(optimizer, module, ["grade"])
        grade = results[0]
        assert grade.best.passes == WITH_GVN and grade.best.count == 1
        with RewriteChecker(optimizer, OPTIONS) as checker:
            verdict = checker.verdict(module, grade)
            written = write_back_checked(optimizer, module, results, [verdict])
    finally:
        optimizer.close()
    assert [(b.measurement.passes, b.diagnosis) for b in verdict.blocked] == [(WITH_GVN, MISCOMPILE)]
    assert "rewrite: returned i32 0" in verdict.blocked[0].check.counterexample
    assert verdict.write.passes == WITHOUT_GVN and verdict.write.count == 8
    assert verdict.check.status == "same" and verdict.module_check.status == "same"
    assert verdict.fallback == "the next-best pass list (8 instructions, coreset) was written instead"
    assert function_instruction_counts(parse(written.text))["grade"] == 8


def test_a_correct_rewrite_is_checked_in_the_function_and_in_the_module(opt_tool, module):
    optimizer = engine(opt_tool.path, [WITH_GVN])
    try:
        results = optimize(optimizer, module)
        with RewriteChecker(optimizer, OPTIONS) as checker:
            verdicts = checker.verdicts(module, results)
    finally:
        optimizer.close()
    by_name = {v.function: v for v in verdicts}
    grade = by_name["grade"]
    assert grade.status == "same" and grade.write.passes == WITH_GVN and not grade.blocked
    assert grade.summary().startswith("same results on 100 inputs")
    assert grade.module_check.status == "same" and grade.module_check.trials == 100
    passed = by_name["passed"]  # -Oz already wins there: nothing of PassPilot's own to check
    assert passed.check.reason == OZ_NOT_CHECKED and passed.write.source == "oz"


def test_a_splice_bug_is_told_apart_from_a_miscompile(opt_tool, module):
    def faulty_splice(text, result, measurement):
        """Splices correctly, then flips the low bit of what the function returns."""
        spliced = spliced_module(text, result, measurement)
        layout = ModuleLayout.from_text(spliced)
        body = layout.function_text(layout.function(result.name))
        broken = re.sub(r"ret i32 (%[\w.]+)", r"%pp.bug = xor i32 \1, 1\n  ret i32 %pp.bug", body)
        assert broken != body
        return spliced.replace(body, broken)

    optimizer = engine(opt_tool.path, [WITH_GVN])
    try:
        results = optimize(optimizer, module, ["grade"])
        with RewriteChecker(optimizer, OPTIONS, splice=faulty_splice) as checker:
            verdict = checker.verdict(module, results[0])
    finally:
        optimizer.close()
    assert [(b.stage, b.diagnosis) for b in verdict.blocked] == [("module", SPLICE_BUG)]
    assert verdict.blocked[0].check.status == "different"
    assert verdict.blocked[0].check.counterexample.startswith("input: @grade(i32 ")
    assert verdict.write is results[0].oz
    assert SPLICE_BUG in verdict.summary()
