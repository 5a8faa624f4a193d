"""lsp_server.ir.normalize: canonical function text and its hash."""

import pytest

from lsp_server.ir.normalize import normalize_function, normalized_hash, split_functions

# clang -O0 style with value names, comments, debug metadata and attribute groups
NAMED = r"""; ModuleID = 'a.c'
source_filename = "a.c"

%struct.S = type { i32, [8 x i8] }
%Pair = type { i32, i32 }

; Function Attrs: noinline nounwind uwtable
define dso_local i32 @sum_pairs(ptr noundef %s, i32 noundef %n) #0 !dbg !10 {
entry:
  %s.addr = alloca ptr, align 8
  %n.addr = alloca i32, align 4
  %acc = alloca %Pair, align 4
  store ptr %s, ptr %s.addr, align 8, !tbaa !20
    #dbg_declare(ptr %s.addr, !24, !DIExpression(), !25)
  store i32 %n, ptr %n.addr, align 4
  br label %loop, !dbg !33

loop:                                             ; preds = %loop, %entry
  %0 = load ptr, ptr %s.addr, align 8, !dbg !34
  %a = getelementptr inbounds %struct.S, ptr %0, i32 0, i32 0, !dbg !43
  %v = load i32, ptr %a, align 4, !dbg !43, !tbaa !44
  %cmp = icmp sgt i32 %v, 3 ; a comment; with "quotes"
  br i1 %cmp, label %loop, label %exit, !llvm.loop !56

exit:                                             ; preds = %loop
  %call = call i32 @sum_pairs(ptr noundef %0, i32 noundef 0) #3, !dbg !61
  ret i32 %call, !dbg !63
}

attributes #0 = { noinline nounwind uwtable }
attributes #3 = { nounwind }

!10 = distinct !DISubprogram(name: "sum_pairs")
"""

# the same function as clang prints it without value names, another name, no metadata
UNNAMED = r"""%struct.S = type { i32, [8 x i8] }
%Pair = type { i32, i32 }

define dso_local i32 @other_name(ptr noundef %0, i32 noundef %1) #1 {
  %3 = alloca ptr, align 8
  %4 = alloca i32, align 4
  %5 = alloca %Pair, align 4
  store ptr %0, ptr %3, align 8
  store i32 %1, ptr %4, align 4
  br label %6

6:
  %7 = load ptr, ptr %3, align 8
  %8 = getelementptr inbounds %struct.S, ptr %7, i32 0, i32 0
  %9 = load i32, ptr %8, align 4
  %10 = icmp sgt i32 %9, 3
  br i1 %10, label %6, label %11

11:                                               ; preds = %6
  %12 = call i32 @other_name(ptr noundef %7, i32 noundef 0)
  ret i32 %12
}
"""


def test_renamings_comments_metadata_do_not_matter():
    assert normalize_function(NAMED) == normalize_function(UNNAMED)
    assert normalized_hash(NAMED) == normalized_hash(UNNAMED)


def test_canonical_form():
    text = normalize_function(NAMED)
    lines = text.splitlines()
    assert lines[0] == "define dso_local i32 @f(ptr noundef %0, i32 noundef %1) {"
    assert lines[1] == "  %2 = alloca ptr, align 8"
    assert "  %4 = alloca %Pair, align 4" in lines  # module-defined type name kept
    assert "  %7 = getelementptr inbounds %struct.S, ptr %6, i32 0, i32 0" in lines
    assert "  br label %5" in lines and "5:" in lines  # block label renamed, entry label dropped
    assert "  %11 = call i32 @f(ptr noundef %6, i32 noundef 0)" in lines  # recursion -> @f
    for gone in ("!dbg", "!tbaa", "!llvm.loop", "#0", "#3", ";", "#dbg_declare", "entry", "sum_pairs"):
        assert gone not in text, gone
    assert all(l == l.rstrip() and l for l in lines)
    assert text.endswith("}\n")


def test_different_bodies_differ():
    changed = UNNAMED.replace("icmp sgt i32 %9, 3", "icmp sgt i32 %9, 4")
    assert normalized_hash(changed) != normalized_hash(UNNAMED)
    swapped = UNNAMED.replace("label %6, label %11", "label %11, label %6")
    assert normalized_hash(swapped) != normalized_hash(UNNAMED)


def test_string_literals_survive():
    ir = r"""define void @g(i32 %x) {
entry:
  call void asm sideeffect "movl %eax, %ebx ; nop # !dbg !3", "~{dirflag}"() #2, !srcloc !7
  %y = add i32 %x, 1 ; tail comment
  ret void
}
"""
    text = normalize_function(ir)
    assert '"movl %eax, %ebx ; nop # !dbg !3"' in text
    assert "!srcloc" not in text and "#2" not in text and "tail comment" not in text
    assert "%1 = add i32 %0, 1" in text


def test_type_positions_not_renamed_without_module():
    # only the function text: %union.U by prefix, %T because it is never defined in the body
    ir = """define void @h(ptr byval(%T) %p, { %T, i32 } %q) {
  %a = alloca %union.U
  %b = load %T, ptr %p
  ret void
}"""
    text = normalize_function(ir)
    assert text.splitlines()[0] == "define void @f(ptr byval(%T) %0, { %T, i32 } %1) {"
    assert "%2 = alloca %union.U" in text
    assert "%3 = load %T, ptr %0" in text


def test_quoted_names_and_labels():
    a = """define i32 @"my func"(i32 %"a b") {
  br label %"next blk"
"next blk":
  %"r x" = add i32 %"a b", 2
  ret i32 %"r x"
}"""
    b = """define i32 @k(i32 %v) {
start:
  br label %n
n:
  %r = add i32 %v, 2
  ret i32 %r
}"""
    assert normalize_function(a) == normalize_function(b)


def test_module_with_several_functions_and_declarations():
    ir = """declare i32 @ext(i32)

define internal i32 @helper(i32 %x) {
  %r = call i32 @ext(i32 %x)
  ret i32 %r
}

define i32 @main() {
  %r = call i32 @helper(i32 1)
  ret i32 %r
}
"""
    assert len(split_functions(ir)) == 2
    text = normalize_function(ir)
    assert "define internal i32 @f(i32 %0)" in text
    assert "define i32 @f1()" in text
    assert "call i32 @f(i32 1)" in text  # cross reference renamed
    assert "@ext" in text  # other globals kept


def test_deterministic_and_errors():
    assert normalize_function(NAMED) == normalize_function(NAMED)
    h = normalized_hash(NAMED)
    assert len(h) == 64 and int(h, 16) >= 0
    with pytest.raises(ValueError):
        normalize_function("declare void @x()\n")
