"""LLVM IR handling: parse and verify, index functions, extract one function, count, splice back."""

from .layout import FunctionSpan, ModuleLayout, defines_function
from .module import InvalidIR, IRError, check, count_instructions, function_instruction_counts, llvm_diagnostic, parse
from .splice import Splice, SpliceError, splice_function
from .standalone import StandaloneFunction, standalone_function

__all__ = [
    "FunctionSpan",
    "IRError",
    "InvalidIR",
    "ModuleLayout",
    "Splice",
    "SpliceError",
    "StandaloneFunction",
    "check",
    "count_instructions",
    "defines_function",
    "function_instruction_counts",
    "llvm_diagnostic",
    "parse",
    "splice_function",
    "standalone_function",
]
