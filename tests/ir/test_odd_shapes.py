"""Odd but valid IR: every shape LLVM accepts is indexed, extracted, optimized and spliced back.

Each module below parses with `opt-22`. For every function: the standalone module parses and verifies,
-Oz runs on it, the optimized function goes back into the module, the module verifies with `opt`, and
every other function stays byte-identical.
"""

from __future__ import annotations

import pytest

from lsp_server.compiler import run_opt, verify
from lsp_server.ir import ModuleLayout, check, count_instructions, parse, splice_function, standalone_function

TRIPLE = 'target triple = "x86_64-pc-linux-gnu"\n'

SHAPES = {
    "multi-line declare": TRIPLE
    + """declare i32
  @g(i32
     noundef)

define i32 @f(i32 %x) {
  %r = call i32 @g(i32 %x)
  ret i32 %r
}
""",
    "multi-line metadata and a comment after `!0 =`": TRIPLE
    + """define i32 @f(i32 %x) {
  %a = add i32 %x, 1, !annotation !0
  ret i32 %a
}
!0 = ; a comment right after the equals sign
  !{!"one",
    !"two"}
!llvm.ident =
  !{!1}
!1 = !{!"hand-written"}
""",
    "multi-line global and attributes": TRIPLE
    + """@table = internal constant [4 x i32] [i32 1,
    i32 2,
    i32 3, i32 4], align 16
define i32 @f(i32 %i) #0 {
  %p = getelementptr [4 x i32], ptr @table, i32 0, i32 %i
  %v = load i32, ptr %p
  ret i32 %v
}
attributes #0 = {
  nounwind
  "frame-pointer"="none" }
""",
    "multi-line switch and header": TRIPLE
    + """define internal i32
@pick(i32 %k,
      i32 %d)
{
entry:
  switch i32 %k, label %other [
    i32 0, label %a
    i32 1, label %b
  ]
a:
  ret i32 10
b:
  ret i32 22
other:
  ret i32 %d
}
define i32 @user(i32 %k) {
  %r = call i32 @pick(i32 %k, i32 7)
  ret i32 %r
}
""",
    "comments in odd places": TRIPLE
    + """; define i32 @ghost() { ret i32 0 }
/* a block comment
   define i32 @ghost2() { */
define i32 @f(i32 %x) ; the header goes on
{ ; the body starts } here
  %a = mul i32 %x, 2 ; } not a brace
  ret i32 %a
} ; done
define i32 @g(i32 %y) { /* } */ ret i32 %y }
""",
    "quoted names": TRIPLE
    + """@"a global" = global i32 3
define i32 @"with space"(i32 %x) {
  %v = load i32, ptr @"a global"
  %r = add i32 %x, %v
  ret i32 %r
}
define i32 @"\\C3\\A9t\\C3\\A9"(i32 %x) {
  %r = call i32 @"with space"(i32 %x)
  %s = add i32 %r, 1
  ret i32 %s
}
define i32 @"q\\22uote"(i32 %x) {
  %r = call i32 @"été"(i32 %x)
  ret i32 %r
}
""",
    "two definitions on one line": TRIPLE
    + "define i32 @f(i32 %x) { %a = add i32 %x, 0 %b = add i32 %a, 0 ret i32 %b } "
    + "define i32 @g(i32 %x) { %r = call i32 @f(i32 %x) %s = add i32 %r, 0 ret i32 %s }\n",
    "define inside a string": TRIPLE
    + """@s = constant [13 x i8] c"define @x() {"
define ptr @f() {
  %p = getelementptr i8, ptr @s, i64 0
  ret ptr %p
}
""",
    "struct return type": TRIPLE
    + """define { i32, i32 } @pair(i32 %a) {
  %x = insertvalue { i32, i32 } poison, i32 %a, 0
  %y = insertvalue { i32, i32 } %x, i32 %a, 1
  ret { i32, i32 } %y
}
""",
    "numbered (anonymous) globals and functions": TRIPLE
    + """@0 = private constant [3 x i32] [i32 1, i32 2, i32 3]
define internal i32 @1(i32 %x) {
  %p = getelementptr [3 x i32], ptr @0, i32 0, i32 %x
  %v = load i32, ptr %p
  %w = add i32 %v, 0
  ret i32 %w
}
define i32 @user(i32 %x) {
  %r = call i32 @1(i32 %x)
  ret i32 %r
}
""",
    "crlf line endings": (
        TRIPLE
        + """declare i32 @g(i32)

define i32 @f(i32 %x) {
entry:
  %r = call i32 @g(i32 %x)
  %s = add i32 %r, 0
  ret i32 %s
}
"""
    ).replace("\n", "\r\n"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_odd_but_valid_shapes_optimize_and_splice(opt_tool, shape):
    text = SHAPES[shape]
    assert verify(opt_tool, text).ok, "the shape itself must be valid for opt"
    assert check(text) == []
    layout = ModuleLayout.from_text(text)
    names = sorted(span.name for span in layout.functions)
    llvm_names = sorted(f.name for f in parse(text).functions if not f.is_declaration)
    assert len(names) == len(llvm_names), shape
    assert [n for n in names if not n.isdigit()] == [n for n in llvm_names if n], shape  # llvmlite: "" for @0
    for span in layout.functions:
        standalone = standalone_function(layout, span)
        parse(standalone.text)  # raises with a located error if extraction broke the text
        run = run_opt(opt_tool, "default<Oz>", standalone.text)
        assert run.ok, (span.name, run.error)
        spliced = splice_function(layout, span, standalone, run.output).apply(text)
        assert verify(opt_tool, spliced).ok, (shape, span.name, spliced)
        after = ModuleLayout.from_text(spliced)
        assert sorted(s.name for s in after.functions) == names
        for other in layout.functions:
            if other.name != span.name:
                assert after.function_text(after.function(other.name)) == layout.function_text(other), other.name


def test_two_definitions_on_one_line_have_exact_ranges():
    layout = ModuleLayout.from_text(SHAPES["two definitions on one line"])
    first, second = layout.functions
    assert first.start_line == second.start_line == 1
    assert layout.function_text(first).startswith("define i32 @f") and layout.function_text(first).endswith("}")
    assert layout.function_text(second).startswith("define i32 @g") and layout.function_text(second).endswith("}")


def test_comments_and_strings_hide_definitions():
    assert [s.name for s in ModuleLayout.from_text(SHAPES["comments in odd places"]).functions] == ["f", "g"]
    assert [s.name for s in ModuleLayout.from_text(SHAPES["define inside a string"]).functions] == ["f"]


def test_block_address_tables_keep_the_blocks(opt_tool, compile_c):
    """A computed goto: the table that takes the blocks' addresses must come along, or -Oz deletes them."""
    text = compile_c(
        """
        int run(const unsigned char *code, int n) {
            static void *labels[] = {&&inc, &&dbl, &&stop};
            int acc = 0, pc = 0;
            goto *labels[code[pc++] % 3];
        inc: acc += 1; if (pc >= n) return acc; goto *labels[code[pc++] % 3];
        dbl: acc *= 2; if (pc >= n) return acc; goto *labels[code[pc++] % 3];
        stop: return acc;
        }
        """
    )
    layout = ModuleLayout.from_text(text)
    standalone = standalone_function(layout, layout.function("run"))
    assert "blockaddress(@run" in standalone.text
    oz = run_opt(opt_tool, "default<Oz>", standalone.text)
    whole = run_opt(opt_tool, "default<Oz>", text)
    assert oz.ok and whole.ok
    assert count_instructions(oz.output) == count_instructions(whole.output) > 5


def test_non_ascii_names_are_one_symbol(opt_tool):
    text = SHAPES["quoted names"]
    layout = ModuleLayout.from_text(text)
    assert layout.function("été") is not None
    standalone = standalone_function(layout, layout.function("q\"uote"))
    assert standalone.text.count("define") == 1 and standalone.text.count("declare") == 1


def test_block_address_table_in_a_comdat(opt_tool):
    text = """$grp = comdat any
@t = global ptr blockaddress(@f, %bb), comdat($grp)
define i32 @f(i32 %x) {
entry:
  %c = icmp eq i32 %x, 0
  br i1 %c, label %bb, label %other
bb:
  ret i32 1
other:
  ret i32 2
}
"""
    layout = ModuleLayout.from_text(text)
    standalone = standalone_function(layout, layout.function("f"))
    assert "$grp = comdat any" in standalone.text
    assert run_opt(opt_tool, "default<Oz>", standalone.text).ok
