"""Prompt builders and answer parsers of the profiles, and pass-list filtering (no model needed)."""

from __future__ import annotations

from lsp_server.model import Proposal, formats
from lsp_server.model.passes import filter_passes
from lsp_server.model.profiles import (
    LLMCompilerFTDProfile,
    ftd_prompt,
    parse_ftd_answer,
    parse_passpilot_answer,
)

KNOWN = {"sroa", "gvn", "instcombine", "simplifycfg", "default", "mem2reg", "licm", "loop-rotate", "dce"}

IR = "define i32 @f(i32 %x) {\n  ret i32 %x\n}\n"


# -- llm-compiler-ftd --------------------------------------------------------------------------------


def test_ftd_prompt_exact():
    assert ftd_prompt(IR) == (
        "[INST] Tell me how to optimize this LLVM-IR for object file size:\n\n"
        "<code>define i32 @f(i32 %x) {\n  ret i32 %x\n}\n</code> [/INST]"
    )


def test_ftd_opt_p_single_quotes_with_nesting():
    answer = " opt -p 'module(default<Oz>),function(instcombine,simplifycfg)' -S input.ll"
    passes, before, after = parse_ftd_answer(answer)
    assert passes == "module(default<Oz>),function(instcombine,simplifycfg)"
    assert (before, after) == (None, None)
    proposal = LLMCompilerFTDProfile().parse(answer, KNOWN)
    assert proposal == Proposal("module(default<Oz>),function(instcombine,simplifycfg)", None, None, answer, None)


def test_ftd_echoed_prompt_is_ignored():
    echoed = ftd_prompt("define void @g() {\n  ret void\n}\n; opt -passes='bogus'") + " -passes='sroa,gvn'"
    assert parse_ftd_answer(echoed)[0] == "sroa,gvn"


def test_ftd_unknown_passes_dropped_and_reported():
    answer = "Run -passes='sroa,gvn,bogus-pass' to get the smallest code."
    proposal = LLMCompilerFTDProfile().parse(answer, KNOWN)
    assert proposal.passes == "sroa,gvn"
    assert proposal.note == "dropped unknown passes: bogus-pass"
    assert proposal.raw == answer


def test_ftd_double_quotes_and_counts():
    answer = 'opt -passes="mem2reg,instcombine" gives an instruction count of 31 -> 12 <code>define ...</code>'
    assert parse_ftd_answer(answer) == ("mem2reg,instcombine", 31, 12)
    worded = "-passes='sroa' reduces the instruction count from 20 to 9."
    assert parse_ftd_answer(worded) == ("sroa", 20, 9)


def test_ftd_nested_items_with_unknown_inner_names():
    answer = "opt -p 'function(sroa,frobnicate),loop-frob,function(nope)' x.ll"
    proposal = LLMCompilerFTDProfile().parse(answer, KNOWN)
    assert proposal.passes == "function(sroa)"
    assert proposal.note == "dropped unknown passes: frobnicate, loop-frob, nope"


def test_ftd_no_pass_list():
    assert parse_ftd_answer("I cannot help with that.") == (None, None, None)
    assert LLMCompilerFTDProfile().parse("I cannot help with that.", KNOWN) is None
    assert LLMCompilerFTDProfile().parse("-passes='bogus,other'", KNOWN) is None


def test_ftd_stops_after_pass_list_and_code_start():
    profile = LLMCompilerFTDProfile()
    assert not profile.done("Applying opt -p 'sroa,gv")
    assert not profile.done("Applying opt -p 'sroa,gvn' to the code")
    assert profile.done("Applying opt -p 'sroa,gvn' gives 10 -> 4")
    assert profile.done("Applying opt -p 'sroa,gvn' gives <code>define")


# -- passpilot -----------------------------------------------------------------------------------------


def test_passpilot_round_trip():
    text = formats.format_answer("sroa, instcombine ,function(gvn)", 40, 22)
    assert text == "sroa,instcombine,function(gvn)\n40 22"
    parsed = formats.parse_answer(text)
    assert parsed == formats.ParsedAnswer("sroa,instcombine,function(gvn)", 40, 22, True)
    assert parse_passpilot_answer(text, KNOWN) == Proposal("sroa,instcombine,function(gvn)", 40, 22, text, None)


def test_passpilot_truncated():
    assert parse_passpilot_answer("sroa,instcom", None) == Proposal("sroa,instcom", None, None, "sroa,instcom")
    parsed = formats.parse_answer("sroa,gvn\n40")
    assert (parsed.passes, parsed.before, parsed.after, parsed.complete) == ("sroa,gvn", 40, None, False)
    # With the known names, the cut-off name is dropped and reported.
    proposal = parse_passpilot_answer("sroa,gvn,instcom", KNOWN)
    assert proposal.passes == "sroa,gvn" and proposal.note == "dropped unknown passes: instcom"


def test_passpilot_garbage():
    assert parse_passpilot_answer("", KNOWN) is None
    assert parse_passpilot_answer("\n12 4", KNOWN) is None
    assert parse_passpilot_answer("\x13\x00zz\n\n", KNOWN) is None
    junk = parse_passpilot_answer("x y z\nabc 1 2", None)
    assert junk == Proposal("xyz", None, None, "x y z\nabc 1 2")
    parsed = formats.parse_answer("sroa\n12 4 and more")
    assert (parsed.before, parsed.after, parsed.complete) == (12, 4, False)


def test_passpilot_prompt_is_normalized_ir():
    text = formats.prompt_text("; comment\ndefine i32 @named(i32 %arg) {\nentry:\n  ret i32 %arg ; done\n}\n")
    assert "@f(" in text and "named" not in text and "comment" not in text
    assert text.endswith("\n")


# -- pass-list filtering -------------------------------------------------------------------------------


def test_filter_keeps_parameters_and_nested():
    result = filter_passes("default<Oz>,instcombine<max-iterations=1>,function<eager-inv>(gvn,dce)", KNOWN)
    assert result.passes == "default<Oz>,instcombine<max-iterations=1>,function<eager-inv>(gvn,dce)"
    assert result.note is None


def test_filter_without_known_only_tidies():
    assert filter_passes(" sroa , bogus ", None).passes == "sroa,bogus"


def test_filter_accepts_print_passes_spellings():
    result = filter_passes("simplifycfg<keep-loops>,loop-rotate", {"simplifycfg<no-keep-loops;keep-loops>", "loop-rotate<x>"})
    assert result.passes == "simplifycfg<keep-loops>,loop-rotate"


def test_filter_loop_adaptor():
    result = filter_passes("loop-mssa(licm,zap),loop(loop-rotate)", KNOWN)
    assert result.passes == "loop-mssa(licm),loop(loop-rotate)"
    assert result.dropped == ["zap"]
