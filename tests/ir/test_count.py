from lsp_server.ir import count_instructions, function_instruction_counts, parse

MODULE = """
define i32 @f(i32 %x) {
entry:
  %a = add i32 %x, 1
  %b = mul i32 %a, 3
  ret i32 %b
}

define internal void @outlined(ptr %p) {
  store i32 0, ptr %p, align 4
  ret void
}

declare void @external(ptr)
"""

WITH_DEBUG_RECORDS = """
define i32 @g(i32 %x) !dbg !5 {
  #dbg_value(i32 %x, !9, !DIExpression(), !10)
  %y = add i32 %x, 2, !dbg !10
  ret i32 %y, !dbg !10
}

!llvm.dbg.cu = !{!0}
!llvm.module.flags = !{!3, !4}
!0 = distinct !DICompileUnit(language: DW_LANG_C11, file: !1, producer: "t", isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug)
!1 = !DIFile(filename: "g.c", directory: "/tmp")
!3 = !{i32 7, !"Dwarf Version", i32 5}
!4 = !{i32 2, !"Debug Info Version", i32 3}
!5 = distinct !DISubprogram(name: "g", scope: !1, file: !1, line: 1, type: !6, spFlags: DISPFlagDefinition, unit: !0)
!6 = !DISubroutineType(types: !7)
!7 = !{!8, !8}
!8 = !DIBasicType(name: "int", size: 32, encoding: DW_ATE_signed)
!9 = !DILocalVariable(name: "x", arg: 1, scope: !5, file: !1, line: 1, type: !8)
!10 = !DILocation(line: 1, column: 1, scope: !5)
"""


def test_module_count_covers_every_defined_function():
    assert function_instruction_counts(parse(MODULE)) == {"f": 3, "outlined": 2}
    assert count_instructions(MODULE) == 5


def test_debug_records_are_not_instructions():
    assert count_instructions(WITH_DEBUG_RECORDS) == 2


def test_counts_clang_output(compile_c):
    text = compile_c("int id(int x) { return x; }")
    # alloca, store, load, ret
    assert count_instructions(text) == 4
