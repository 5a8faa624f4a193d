import pytest

from lsp_server.ir import InvalidIR, check, parse


def test_parse_error_is_located():
    text = "define i32 @f() {\n  ret i64 0\n}\n"
    [error] = check(text)
    assert (error.line, error.column) == (1, 6)
    assert "result type" in error.message


def test_verifier_error_points_at_the_instruction():
    text = "define i32 @f(i32 %x) {\n  %a = add i32 %b, 1\n  %b = add i32 %a, 1\n  ret i32 0\n}\n"
    [error] = check(text)
    assert error.line in (1, 2)
    assert "dominate" in error.message


def test_valid_module_has_no_errors(example_text):
    assert check(example_text) == []


def test_invalid_ir_exception_carries_errors():
    with pytest.raises(InvalidIR) as caught:
        parse("this is not IR\n")
    assert caught.value.errors[0].line == 0


def test_error_after_a_carriage_return_is_located_where_llvm_means():
    """LLVM counts columns from the last line feed or carriage return; IRError counts from the line feed."""
    from lsp_server.ir import check

    errors = check("define i32 @f() {\n  ret i32 0\rbad\n}\n")
    assert [(e.line, e.column) for e in errors] == [(1, 12)]
