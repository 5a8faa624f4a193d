"""The one splice-and-verify step (`engine.module.splice_verified`): what write-back, "Optimize function"
and the behaviour check's spliced module go through."""

from __future__ import annotations

import dataclasses

import pytest

from lsp_server.compiler import run_opt, verify
from lsp_server.engine import FunctionResult, Measurement, splice_functions, splice_verified, standalone_functions
from lsp_server.engine.behaviour import spliced_module
from lsp_server.ir import ModuleLayout, function_instruction_counts, parse
from lsp_server.session.edits import EditRefused, apply_replacements, plan_function_rewrite

OZ = "default<Oz>"


def result(opt_tool, text: str, name: str, passes: str = OZ) -> FunctionResult:
    function = standalone_functions(text, [name])[1][0]
    run = run_opt(opt_tool, passes, function.text)
    assert run.ok, run.error
    measured = Measurement(passes, "oz" if passes == OZ else "coreset", function_instruction_counts(parse(run.output))[name], output=run.output)
    original = function_instruction_counts(parse(function.text))[name]
    return FunctionResult(function, original, measured, measured, (measured,))


@pytest.fixture(scope="module")
def crlf_text(example_text) -> str:
    return example_text.replace("\n", "\r\n")


def test_several_functions_are_written_once_and_verified(opt_tool, example_text):
    picks = [(r, r.best) for r in (result(opt_tool, example_text, n) for n in ("weighted_sum", "checksum"))]
    module = splice_verified(opt_tool, example_text, picks)
    assert [o.applied for o in module.outcomes] == [m for _, m in picks]
    assert all(o.verified and o.failure is None for o in module.outcomes)
    assert verify(opt_tool, module.text).ok
    assert "!6 = " not in module.text and "!8 = " not in module.text  # the old bodies' loop metadata went
    for name in ("grade", "max_of", "describe"):  # the others are byte-identical
        old, new = ModuleLayout.from_text(example_text), ModuleLayout.from_text(module.text)
        assert new.function_text(new.function(name)) == old.function_text(old.function(name))


def test_a_crlf_document_is_written_in_its_line_ends_when_asked(opt_tool, example_text, crlf_text):
    rewrite = result(opt_tool, crlf_text, "weighted_sum")
    followed = splice_verified(opt_tool, crlf_text, [(rewrite, rewrite.best)], follow_line_ends=True)
    assert followed.outcomes[0].applied is rewrite.best and verify(opt_tool, followed.text).ok
    assert "\n" not in followed.text.replace("\r\n", "")  # no bare LF
    lf = splice_verified(opt_tool, example_text, [(rewrite, rewrite.best)])
    assert followed.text.replace("\r\n", "\n") == lf.text  # the same lines (an orphan's line goes entirely)
    as_printed = splice_verified(opt_tool, crlf_text, [(rewrite, rewrite.best)])  # the CLI: as opt printed it
    assert "\n" in as_printed.text.replace("\r\n", "") and as_printed.text.replace("\r\n", "\n") == lf.text


def test_a_rewrite_that_does_not_verify_is_left_out_with_the_verifier_message(opt_tool, example_text, monkeypatch):
    good = result(opt_tool, example_text, "grade")
    broken_output = good.best.output.replace("ret i32", "ret i64", 1)
    broken = dataclasses.replace(good.best, output=broken_output)
    calls = []
    import lsp_server.engine.module as module_step

    real_verify = module_step.verify
    monkeypatch.setattr(module_step, "verify", lambda *a, **k: calls.append(1) or real_verify(*a, **k))
    module = splice_verified(opt_tool, example_text, [(good, broken)])
    assert module.text == example_text and len(calls) == 1  # one function: no second, one-at-a-time verify
    (outcome,) = module.outcomes
    assert outcome.applied is None and outcome.failure == "verify" and outcome.error
    assert outcome.reason == "the rewritten module did not verify"

    other = result(opt_tool, example_text, "max_of")
    calls.clear()
    module = splice_verified(opt_tool, example_text, [(good, broken), (other, other.best)])
    assert [o.failure for o in module.outcomes] == ["verify", None]  # one at a time: the good one is written
    assert module.outcomes[1].applied is other.best and verify(opt_tool, module.text).ok
    with pytest.raises(EditRefused, match="the rewritten module does not verify, nothing was changed: "):
        plan_function_rewrite(opt_tool, example_text, "grade", dataclasses.replace(good, best=broken, measurements=(broken,)), "best")


def test_a_missing_function_says_so(opt_tool, example_text):
    grade = result(opt_tool, example_text, "grade")
    text = example_text.replace("@grade(", "@graded(")
    module = splice_verified(opt_tool, text, [(grade, grade.best)])
    assert module.text == text and module.outcomes[0].failure == "missing"
    with pytest.raises(EditRefused, match="@grade is no longer defined in the document"):
        plan_function_rewrite(opt_tool, text, "grade", grade, "oz")


def test_the_behaviour_check_splices_what_is_written(opt_tool, example_text):
    grade = result(opt_tool, example_text, "weighted_sum")
    spliced, (problem,) = splice_functions(example_text, [(grade, grade.best)])
    assert problem is None
    assert spliced_module(example_text, grade, grade.best) == spliced == splice_verified(opt_tool, example_text, [(grade, grade.best)]).text


@pytest.mark.parametrize("crlf", [False, True])
def test_the_function_rewrite_edit_is_the_function_and_the_appendix(opt_tool, example_text, crlf):
    text = example_text.replace("\n", "\r\n") if crlf else example_text
    grade = result(opt_tool, text, "grade")
    planned = plan_function_rewrite(opt_tool, text, "grade", grade, "oz")
    assert apply_replacements(text, planned.replacements) == planned.new_text
    assert verify(opt_tool, planned.new_text).ok
    layout = ModuleLayout.from_text(text)
    span = layout.function("grade")
    first, *rest = planned.replacements
    assert (first.start_line, first.end_line) == (span.attrs_comment_line, span.end_line)
    assert first.text == planned.function_text and planned.function_text.startswith("; Function Attrs:")
    assert all(r.start_line == len(layout.lines) - 1 for r in rest)  # anything else is appended at the end
    if crlf:
        assert "\n" not in planned.new_text.replace("\r\n", "")
