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
