"""Extraction and splicing against the real opt: the rewritten module verifies, nothing else moves."""

import subprocess

from lsp_server.compiler import run_opt, verify
from lsp_server.ir import ModuleLayout, count_instructions, parse, splice_function, standalone_function

SOURCE = r"""
#include <stdio.h>
#include <string.h>
static int table[4] = {1, 2, 3, 4};
const char *names[] = {"a", "bb"};
static int helper(int x) { return table[x & 3] * 2; }
int sum(int *a, int n) { int s = 0; for (int i = 0; i < n; i++) s += helper(a[i]); return s; }
int pick(int k) { switch (k) { case 0: return 10; case 1: return 22; case 2: return 35; case 3: return 41; default: return 0; } }
void cp(char *d, const char *s) { memcpy(d, s, strlen(s)); puts(names[1]); }
"""


def _optimize(opt_tool, text, name, passes="default<Oz>"):
    layout = ModuleLayout.from_text(text)
    span = layout.function(name)
    function = standalone_function(layout, span)
    run = run_opt(opt_tool, passes, function.text)
    assert run.ok, run.error
    return layout, span, function, run.output


def test_standalone_module_is_valid_and_external(opt_tool, compile_c):
    text = compile_c(SOURCE)
    layout = ModuleLayout.from_text(text)
    helper = standalone_function(layout, layout.function("helper"))
    parse(helper.text)
    assert helper.linkage == "internal"
    assert "define internal" not in helper.text
    assert "@table = external hidden global [4 x i32], align 16" in helper.text
    cp = standalone_function(layout, layout.function("cp"))
    assert "declare i64 @strlen" in cp.text and "@names = external" in cp.text


def test_standalone_counts_match_llvm_extract(opt_tool, compile_c, tmp_path):
    text = compile_c(SOURCE)
    path = tmp_path / "m.ll"
    path.write_text(text)
    layout = ModuleLayout.from_text(text)
    for span in layout.functions:
        ours = standalone_function(layout, span).text
        extracted = subprocess.run(
            ["llvm-extract-22", f"--func={span.name}", "-S", "-o", "-", str(path)], capture_output=True, text=True, check=True
        ).stdout
        ours_oz = run_opt(opt_tool, "default<Oz>", ours).output
        theirs_oz = run_opt(opt_tool, "default<Oz>", extracted).output
        assert count_instructions(ours) == count_instructions(extracted)
        assert count_instructions(ours_oz) == count_instructions(theirs_oz), span.name


def test_splice_every_function_keeps_module_valid(opt_tool, compile_c):
    text = compile_c(SOURCE)
    for name in ["sum", "helper", "pick", "cp"]:
        layout, span, function, optimized = _optimize(opt_tool, text, name)
        text = splice_function(layout, span, function, optimized).apply(text)
        assert verify(opt_tool, text).ok, name
    final = ModuleLayout.from_text(text)
    assert "@switch.table.pick = private unnamed_addr constant" in text
    assert "define internal" in final.function_text(final.function("helper"))
    assert count_instructions(text) < count_instructions(compile_c(SOURCE))


def test_other_functions_stay_byte_identical(opt_tool, compile_c):
    original = compile_c(SOURCE)
    layout, span, function, optimized = _optimize(opt_tool, original, "pick")
    result = splice_function(layout, span, function, optimized).apply(original)
    after = ModuleLayout.from_text(result)
    for name in ["sum", "helper", "cp"]:
        assert after.function_text(after.function(name)) == layout.function_text(layout.function(name))
    # Everything before the spliced function is untouched, byte for byte.
    first = span.attrs_comment_line if span.attrs_comment_line is not None else span.start_line
    assert result.split("\n")[:first] == original.split("\n")[:first]


def test_new_global_renamed_on_clash(opt_tool, compile_c):
    text = compile_c(SOURCE + "\nint switch_table_user(void) { return 0; }\n")
    # A user global that happens to carry the name the switch-to-lookup transform will pick.
    text = text.replace(
        "@table = internal global",
        "@switch.table.pick = internal global [1 x i32] [i32 7], align 4\n@table = internal global",
    )
    assert verify(opt_tool, text).ok
    layout, span, function, optimized = _optimize(opt_tool, text, "pick")
    result = splice_function(layout, span, function, optimized).apply(text)
    assert verify(opt_tool, result).ok
    assert "@switch.table.pick = internal global [1 x i32] [i32 7]" in result
    assert "@switch.table.pick.pp1 = private unnamed_addr constant [4 x i32]" in result
    assert "@switch.table.pick.pp1," in ModuleLayout.from_text(result).function_text(
        ModuleLayout.from_text(result).function("pick")
    )


def test_attribute_groups_of_spliced_function_exist(opt_tool, compile_c):
    text = compile_c(SOURCE)
    layout, span, function, optimized = _optimize(opt_tool, text, "pick")
    result = splice_function(layout, span, function, optimized).apply(text)
    after = ModuleLayout.from_text(result)
    header = after.lines[after.function("pick").start_line]
    group = header.rsplit("#", 1)[1].split()[0]
    assert f"#{group}" in after.attribute_groups
    assert "memory(none)" in after.attribute_groups[f"#{group}"]
    # The group the function had before is still there for the functions that share it.
    assert layout.attribute_groups.keys() <= after.attribute_groups.keys()


def test_optnone_is_removed_and_reported(opt_tool, compile_c):
    text = compile_c("int sq(int x) { int y = x * x; return y; }", "-O0")
    assert "optnone" in text
    layout = ModuleLayout.from_text(text)
    function = standalone_function(layout, layout.function("sq"))
    assert function.optnone_removed
    groups = [line for line in function.text.splitlines() if line.startswith("attributes")]
    assert groups and not any("optnone" in line or "noinline" in line for line in groups)
    optimized = run_opt(opt_tool, "default<Oz>", function.text).output
    assert count_instructions(optimized) < count_instructions(function.text)
    result = splice_function(layout, layout.function("sq"), function, optimized).apply(text)
    assert verify(opt_tool, result).ok


def test_debug_info_module_splices_and_verifies(opt_tool, compile_c):
    text = compile_c("int tri(int n) { int s = 0; for (int i = 0; i < n; i++) s += i; return s; }\nint one(void) { return 1; }\n",
                     "-O0", "-Xclang", "-disable-O0-optnone", "-g")
    layout, span, function, optimized = _optimize(opt_tool, text, "tri")
    result = splice_function(layout, span, function, optimized).apply(text)
    check = verify(opt_tool, result)
    assert check.ok, check.error
    assert result.count("distinct !DICompileUnit") == 1
