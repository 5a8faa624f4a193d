"""Does a rewritten function still compute what the original computed? A differential test with clang-22.

PassPilot proves that a rewrite verifies and is smaller; this module gathers evidence that it behaves the
same. Both modules are compiled with `clang-22 -O0` against one generated driver (see `behaviour_driver`),
run on the same few hundred generated inputs, and compared: the return value, every byte of the buffers the
pointer parameters point to, the globals the module defines or uses, what the function prints, and the
calls it makes to stubbed externals.

How trials are judged:
- both versions return (or call `exit`) with the same state: agreement;
- both crash or hang (division by zero, a null pointer...): agreement, counted as `both_failed`;
- the original crashes or hangs and the rewrite does not: the input has undefined behaviour; not compared
  (`original_failed`);
- anything else is a difference. When a `reference` module is given (the function as -Oz compiles it), a
  difference that -Oz shows too (the same state as the rewrite) is blamed on undefined behaviour in the
  input, not on the rewrite, and counted as `undefined`.

Externals the module does not define: memory and string functions, math, stdio output (captured) and
`exit`/`abort` run for real; the C allocation functions run on a deterministic allocator; everything else is
replaced by a stub that returns a value derived from its arguments (and is logged when it may write memory;
a stub of a `noreturn` external ends the trial). A called external whose signature a stub cannot take makes
the check "not-checked".

The function under test is code from the user's document: each trial runs in a forked child with limits on
time, memory and output size, without files other than its captured output, and (on x86-64 Linux) under a
seccomp filter that allows only the system calls computing, allocating, printing and exiting need.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import llvmlite.binding as llvm

from ..ir.tokens import matching_close
from .behaviour_driver import DRIVER_CALLS, DRIVER_PRELUDE, DRIVER_SOURCE, DRIVER_TABLES

CLANG = "clang-22"
DEFAULT_TRIALS = 300
DEFAULT_SEED = 20250611
DEFAULT_TRIAL_TIMEOUT_S = 0.25
DEFAULT_RUN_BUDGET_S = 10.0  # per executable: trials stop being started after this long
COMPILE_TIMEOUT_S = 120.0
NORETURN_EXIT = 113  # the exit status of a stub of an external that does not return (see the driver)
MAX_CONFIRMATIONS = 3  # trials that hung on one side only and are run again with a longer limit

Status = Literal["same", "different", "not-checked"]


@dataclass(frozen=True)
class BehaviourCheck:
    status: Status
    trials: int  # inputs both versions ran (agreeing, failing together, or differing)
    reason: str | None = None  # why not checked, or what differs
    counterexample: str | None = None  # the inputs and both outcomes of the first difference
    both_failed: int = 0  # inputs on which both versions crashed or hung
    original_failed: int = 0  # inputs on which only the original crashed or hung: not compared
    undefined: int = 0  # differences that the -Oz reference shows as well (undefined behaviour)
    mismatches: int = 0  # inputs that differ

    def summary(self) -> str:
        """One line for tables, hovers and code action titles."""
        if self.status == "same":
            failed = f" ({self.both_failed} of them crash or hang in both)" if self.both_failed else ""
            return f"same results on {self.trials} inputs{failed}"
        if self.status == "different":
            return f"different results on {self.mismatches} of {self.trials} inputs"
        return f"not checked: {self.reason}"

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "trials": self.trials,
            "reason": self.reason,
            "counterexample": self.counterexample,
            "both_failed": self.both_failed,
            "original_failed": self.original_failed,
            "undefined": self.undefined,
            "mismatches": self.mismatches,
        }


def not_checked(reason: str) -> BehaviourCheck:
    return BehaviourCheck("not-checked", 0, reason)


def find_clang(setting: str | None = None) -> str | None:
    """clang-22: the setting, else PASSPILOT_CLANG (only that one, when given), else `clang-22` on PATH or in
    LLVM 22's folder."""
    explicit = setting or os.environ.get("PASSPILOT_CLANG")
    candidates = [explicit] if explicit else [CLANG, "/usr/lib/llvm-22/bin/clang"]
    for candidate in candidates:
        if candidate:
            found = shutil.which(candidate) or (candidate if Path(candidate).is_file() and os.access(candidate, os.X_OK) else None)
            if found:
                return found
    return None


@dataclass(frozen=True)
class BehaviourOptions:
    trials: int = DEFAULT_TRIALS
    seed: int = DEFAULT_SEED
    trial_timeout: float = DEFAULT_TRIAL_TIMEOUT_S  # seconds before one trial counts as hung
    run_budget: float = DEFAULT_RUN_BUDGET_S  # seconds per executable before no new trial starts
    clang: str | None = None  # the clang-22 to use (default: see `find_clang`)
    driver_dir: str | None = None  # where the compiled driver is kept between runs (None: a folder removed on close)


class BehaviourChecker:
    """Runs differential checks. The driver is compiled once and kept while the checker is open."""

    def __init__(self, options: BehaviourOptions = BehaviourOptions()):
        self.options = options
        self.clang = find_clang(options.clang)
        self._folder: tempfile.TemporaryDirectory | None = None
        self._driver: Path | None = None
        self._driver_problem: str | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> BehaviourChecker:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._folder is not None:
                self._folder.cleanup()
            self._folder = None
            self._driver = None

    def check(self, original: str, rewritten: str, function: str, *, reference: str | None = None) -> BehaviourCheck:
        """Compare `function` in two module texts (see the module docstring); `reference` is the -Oz version."""
        if self.clang is None:
            return not_checked(f"{CLANG} is not installed")
        try:
            harness = _Harness.build(original, rewritten, reference, _llvm_name(function))
            driver, folder = self._driver_object()
        except _NotCheckable as error:
            return not_checked(str(error))
        with tempfile.TemporaryDirectory(prefix="passpilot-check-", dir=folder) as work:
            runner = _Runner(harness, Path(work), self.clang, driver, self.options)
            try:
                return runner.compare()
            except _NotCheckable as error:
                return not_checked(str(error))

    def _driver_object(self) -> tuple[Path, Path | None]:
        """The compiled driver (compiled once; kept in `driver_dir` across runs when set), and a folder for the
        checks' own files (None: the system's temporary folder)."""
        with self._lock:
            if self._driver_problem:
                raise _NotCheckable(self._driver_problem)
            if self._driver is not None:
                return self._driver, Path(self._folder.name) if self._folder else None
            source_text = DRIVER_PRELUDE + DRIVER_TABLES + DRIVER_SOURCE
            if self.options.driver_dir:
                folder = Path(self.options.driver_dir)
                stat = os.stat(self.clang)
                identity = f"{self.clang}\0{stat.st_size}\0{stat.st_mtime_ns}\0{source_text}"
                output = folder / f"driver-{hashlib.sha256(identity.encode()).hexdigest()[:20]}.o"
                if output.is_file():
                    self._driver = output
                    return output, None
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise _NotCheckable(f"cannot keep the test driver in {folder}: {error.strerror or error}") from None
            else:
                self._folder = tempfile.TemporaryDirectory(prefix="passpilot-behaviour-")
                folder = Path(self._folder.name)
                output = folder / "driver.o"
            with tempfile.TemporaryDirectory(prefix="driver-", dir=folder) as building:
                source = Path(building) / "driver.c"
                source.write_text(source_text)
                built = Path(building) / "driver.o"
                problem = _run_clang(self.clang, ["-O1", "-w", "-fno-pie", "-c", str(source), "-o", str(built)], "the test driver", Path(building))
                if problem:
                    self._driver_problem = problem
                    raise _NotCheckable(problem)
                os.replace(built, output)  # atomic: another process may be building the same driver
            self._driver = output
            return output, Path(self._folder.name) if self._folder else None


def check_behaviour(
    original: str, rewritten: str, function: str, *, reference: str | None = None, options: BehaviourOptions = BehaviourOptions()
) -> BehaviourCheck:
    """One check with a checker of its own (see `BehaviourChecker` to run many)."""
    with BehaviourChecker(options) as checker:
        return checker.check(original, rewritten, function, reference=reference)


def _run_clang(clang: str, arguments: list[str], what: str, folder: Path) -> str | None:
    try:
        run = subprocess.run(
            [clang, *arguments], capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, errors="replace", cwd=folder
        )
    except subprocess.TimeoutExpired:
        return f"{CLANG} timed out building {what}"
    except OSError as error:
        return f"could not run {clang}: {error}"
    if run.returncode != 0:
        detail = next((line.strip() for line in run.stderr.splitlines() if "error" in line), run.stderr.strip())
        return f"{CLANG} could not build {what}: {detail[:300]}"
    return None


# -- what the modules contain ------------------------------------------------------------------------

# Run for real: they only compute, or touch the memory they are given, or write to the captured output.
REAL_FUNCTIONS = frozenset(
    """
    memcpy memmove memset memcmp memchr memrchr bcmp bcopy bzero mempcpy memccpy strlen strnlen strcmp strncmp
    strcasecmp strncasecmp strcpy strncpy stpcpy stpncpy strcat strncat strchr strrchr strchrnul strstr strcasestr
    strspn strcspn strpbrk strtok strtok_r strcoll strxfrm
    isalnum isalpha isascii isblank iscntrl isdigit isgraph islower isprint ispunct isspace isupper isxdigit
    tolower toupper toascii __ctype_b_loc __ctype_tolower_loc __ctype_toupper_loc __errno_location
    abs labs llabs div ldiv lldiv atoi atol atoll atof strtol strtoul strtoll strtoull strtod strtof strtold
    strtoimax strtoumax __isoc23_strtol __isoc23_strtoul __isoc23_strtoll __isoc23_strtoull qsort bsearch
    ffs ffsl ffsll rand srand rand_r random srandom
    printf vprintf puts putchar perror putchar_unlocked __printf_chk __vprintf_chk sprintf snprintf vsprintf
    vsnprintf sscanf __isoc99_sscanf __isoc23_sscanf __sprintf_chk __snprintf_chk __vsprintf_chk __vsnprintf_chk
    getchar scanf __isoc99_scanf __isoc23_scanf
    exit abort _exit _Exit __assert_fail __stack_chk_fail
    __memcpy_chk __memset_chk __memmove_chk __strcpy_chk __strcat_chk __strncpy_chk __stpcpy_chk __strncat_chk
    """.split()
    + [
        name + suffix
        for name in """
        acos asin atan atan2 cos sin tan cosh sinh tanh acosh asinh atanh exp exp2 expm1 exp10 log log2 log10
        log1p logb pow sqrt cbrt hypot fabs floor ceil round roundeven trunc rint nearbyint lround llround lrint
        llrint fmod remainder fmin fmax fdim fma copysign nextafter ldexp frexp modf scalbn scalbln ilogb erf
        erfc tgamma lgamma sincos
        """.split()
        for suffix in ("", "f", "l")
    ]
)
REAL_GLOBALS = frozenset({"stdout", "stderr", "stdin"})

# The C library's stream functions, when declared with these types: real for stdin/stdout/stderr, and for
# any other FILE* (made up from the inputs) a stream whose bytes are compared.
STREAMS = {
    "fwrite": "i64 (ptr, i64, i64, ptr)",
    "fwrite_unlocked": "i64 (ptr, i64, i64, ptr)",
    "fputc": "i32 (i32, ptr)",
    "putc": "i32 (i32, ptr)",
    "fputc_unlocked": "i32 (i32, ptr)",
    "putc_unlocked": "i32 (i32, ptr)",
    "fputs": "i32 (ptr, ptr)",
    "fputs_unlocked": "i32 (ptr, ptr)",
    "fprintf": "i32 (ptr, ptr, ...)",
    "vfprintf": "i32 (ptr, ptr, ptr)",
    "__fprintf_chk": "i32 (ptr, i32, ptr, ...)",
    "__vfprintf_chk": "i32 (ptr, i32, ptr, ptr)",
    "fflush": "i32 (ptr)",
    "fgetc": "i32 (ptr)",
    "getc": "i32 (ptr)",
    "ungetc": "i32 (i32, ptr)",
    "fgets": "ptr (ptr, i32, ptr)",
    "fread": "i64 (ptr, i64, i64, ptr)",
    "feof": "i32 (ptr)",
    "ferror": "i32 (ptr)",
}

# The C allocation functions, on the driver's deterministic allocator, when declared with these types.
ALLOCATORS = {
    "malloc": "ptr (i64)",
    "valloc": "ptr (i64)",
    "calloc": "ptr (i64, i64)",
    "realloc": "ptr (ptr, i64)",
    "reallocarray": "ptr (ptr, i64, i64)",
    "aligned_alloc": "ptr (i64, i64)",
    "memalign": "ptr (i64, i64)",
    "posix_memalign": "i32 (ptr, i64, i64)",
    "free": "void (ptr)",
    "strdup": "ptr (ptr)",
    "strndup": "ptr (ptr, i64)",
    "_Znwm": "ptr (i64)",
    "_Znam": "ptr (i64)",
    "_ZdlPv": "void (ptr)",
    "_ZdaPv": "void (ptr)",
    "_ZdlPvm": "void (ptr, i64)",
    "_ZdaPvm": "void (ptr, i64)",
}

_KINDS = {"i1": 0, "i8": 1, "i16": 2, "i32": 3, "i64": 4, "i128": 5, "float": 6, "double": 7, "x86_fp80": 8, "ptr": 9}
_SIZES = {"i1": 1, "i8": 1, "i16": 2, "i32": 4, "i64": 8, "i128": 16, "float": 4, "double": 8, "x86_fp80": 10, "ptr": 8}
_STUB_ARG_KINDS = {"float": "f", "double": "d", "x86_fp80": "x", "ptr": "p"}
_STUB_RETURN_KINDS = {"void": 0, "i1": 1, "float": 3, "double": 4, "x86_fp80": 5, "ptr": 6}  # other integers: 2
_ABI_ATTRIBUTES = re.compile(r"^(zeroext|signext|byval\(.*\)|sret\(.*\)|byref\(.*\)|align \d+)$")
_UNSUPPORTED_ATTRIBUTES = re.compile(r"^(inalloca|preallocated|swiftself|swifterror|swiftasync|nest|inreg)\b")
_CALLING_CONVENTIONS = re.compile(
    r"\b(fastcc|coldcc|tailcc|ccc|cc\s*\d+|swiftcc|swifttailcc|ghccc|anyregcc|preserve_mostcc|preserve_allcc|"
    r"preserve_nonecc|cxx_fast_tlscc|webkit_jscc|x86_\w+cc|x86_64_sysvcc|win64cc|(?:aarch64|amdgpu|arm|avr|msp430|ptx|"
    r"riscv|spir|m68k)_\w+)\b"
)
_PORTABLE_CONVENTIONS = {"", "ccc", "fastcc", "coldcc"}
_PLAIN_NAME = re.compile(r"[-a-zA-Z$._][-a-zA-Z$._0-9]*")

PARAM_BUFFER_BYTES = 16384
STUB_BUFFER_BYTES = 16384
HEAP_BYTES = 8 << 20
ARENA_ADDRESS = 0x60000000  # below 2 GiB: absolute 32-bit addressing reaches it
ARENA_LIMIT = 0x1F000000
PAGE = 4096
SLOT = 64  # bytes per parameter in the argument block
DUMP_BYTES = 65536


class _NotCheckable(Exception):
    pass


@dataclass(frozen=True)
class _Leaf:
    kind: str
    offset: int
    region: int = -1
    nonnull: bool = False


@dataclass(frozen=True)
class _Value:
    type: str
    size: int
    leaves: tuple[_Leaf, ...]


def _llvm_name(function: str) -> str:
    """`@"a b"` or `@f` or `f` -> the name LLVM knows."""
    name = function[1:] if function.startswith("@") else function
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        name = re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), name[1:-1])
    return name


def _token(name: str) -> str:
    """A global's name as IR text."""
    if _PLAIN_NAME.fullmatch(name):
        return "@" + name
    escaped = "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\{b:02X}" for b in name.encode())
    return f'@"{escaped}"'


def _value_layout(type_ref, target_data, base: int = 0) -> list[_Leaf]:
    """The scalars inside a parameter or return type, with their byte offsets."""
    text = str(type_ref)
    if text in _KINDS:
        return [_Leaf(text, base)]
    kind = type_ref.type_kind
    if kind in (llvm.TypeKind.vector, llvm.TypeKind.array):
        element = next(iter(type_ref.elements))
        if kind == llvm.TypeKind.vector and str(element) in ("i1", "x86_fp80"):
            raise _NotCheckable(f"takes or returns the vector type {text}")
        stride = target_data.get_abi_size(element) if kind == llvm.TypeKind.array else _SIZES.get(str(element), 0)
        leaves = []
        for index in range(type_ref.element_count):
            leaves += _value_layout(element, target_data, base + index * stride)
        return leaves
    if kind == llvm.TypeKind.struct and not type_ref.is_opaque_struct:
        leaves = []
        for index, element in enumerate(type_ref.elements):
            leaves += _value_layout(element, target_data, base + target_data.get_element_offset(type_ref, index))
        return leaves
    raise _NotCheckable(f"takes or returns the type {text}")


@dataclass
class _Module:
    role: str
    module: llvm.ModuleRef
    context: object
    target: llvm.ValueRef
    target_data: object
    noreturn_callees: set[str] = field(default_factory=set)  # called right before `unreachable`


def _parse(text: str, role: str, name: str) -> _Module:
    context = llvm.create_context()
    try:
        module = llvm.parse_assembly(text, context=context)
    except RuntimeError as error:
        raise _NotCheckable(f"the {role} module does not parse: {str(error).strip().splitlines()[0][:200]}") from None
    target = next((f for f in module.functions if f.name == name), None)
    if target is None or target.is_declaration:
        raise _NotCheckable(f"the {role} module does not define @{name}")
    noreturn = set()
    for function in module.functions:
        for block in function.blocks:
            previous = None
            for instruction in block.instructions:
                if instruction.opcode == "unreachable" and previous is not None and previous.opcode == "call":
                    callee = list(previous.operands)[-1]
                    if callee.value_kind == llvm.ValueKind.function:
                        noreturn.add(callee.name)
                previous = instruction
    return _Module(role, module, context, target, llvm.create_target_data(module.data_layout), noreturn)


def _header(function: llvm.ValueRef) -> str:
    """The `define`/`declare` line of a function as LLVM prints it."""
    for line in str(function).splitlines():
        if line.startswith(("define", "declare")):
            return line
    return ""


def _calling_convention(function: llvm.ValueRef) -> str:
    header = _header(function)
    before = header.split(_token(function.name) + "(", 1)[0] if function.name else header
    match = _CALLING_CONVENTIONS.search(before.replace("define", "").replace("declare", ""))
    return match.group(1) if match else ""


def _return_attributes(function: llvm.ValueRef) -> list[str]:
    """`zeroext`/`signext` on the result: calls must say the same."""
    header = _header(function)
    before = header.split(_token(function.name) + "(", 1)[0]
    return [word for word in ("zeroext", "signext") if re.search(rf"\b{word}\b", before)]


def _argument_attributes(argument: llvm.ValueRef) -> list[str]:
    return [attribute.decode() if isinstance(attribute, bytes) else str(attribute) for attribute in argument.attributes]


def _function_attributes(function: llvm.ValueRef) -> str:
    """The function's own attributes (not those of its parameters or result), as LLVM prints them."""
    printed = str(function).splitlines()
    words = [line.split(":", 1)[1] for line in printed if line.startswith("; Function Attrs:")]
    header = _header(function)
    start = header.find(_token(function.name) + "(")
    if start >= 0:
        close = matching_close(header, start + len(_token(function.name)))
        if close >= 0:
            words.append(header[close + 1 :])
    return " ".join(words)


def _may_write(function: llvm.ValueRef) -> bool:
    """Whether an external's declaration allows it to write memory (then its calls are compared)."""
    words = _function_attributes(function)
    if re.search(r"\b(readnone|readonly)\b", words):
        return False
    memory = re.search(r"\bmemory\(([^)]*)\)", words)
    if memory:
        return bool(re.search(r"\b(write|readwrite)\b", memory.group(1)))
    return True


def _reachable(module: llvm.ModuleRef, start: llvm.ValueRef) -> set[str]:
    """Names of the functions `start` may call or take the address of, through functions the module defines."""
    seen: set[str] = set()
    pending = [start]
    while pending:
        function = pending.pop()
        for block in function.blocks:
            for instruction in block.instructions:
                for operand in instruction.operands:
                    if operand.value_kind != llvm.ValueKind.function:
                        continue
                    name = operand.name
                    if name in seen:
                        continue
                    seen.add(name)
                    callee = module.get_function(name) if name else None
                    if callee is not None and not callee.is_declaration:
                        pending.append(callee)
    return seen


def _global_line(variable: llvm.ValueRef) -> str:
    text = str(variable)
    return text.split("\n", 1)[0]


_GLOBAL_KIND = re.compile(r"=\s*(?:[a-z_]+(?:\([^)]*\))?\s+)*?(global|constant)\b")


FILL_ANY, FILL_POINTERS, FILL_STRING = 0, 1, 2  # how the driver fills a buffer (see pp_fill)


@dataclass(frozen=True)
class _Symbol:
    name: str  # as the module calls it
    size: int  # bytes (0 for functions: only their address is compared)
    writable: bool = False  # a global the module defines and may write: compared after each trial
    link: str | None = None  # an external's name in the executable (a stub's, or the C library's)


@dataclass(frozen=True)
class _Region:
    label: str  # `%p`, `@name`
    address: int
    size: int  # whole pages; a guard page follows
    fill: int
    used: int  # the bytes of the parameter's buffer or the global; a string constant ends with a NUL there


@dataclass(frozen=True)
class _StubParameter:
    text: str  # as the stub declares it: `i32`, `ptr byval([24 x i8]) align 8`
    kind: str  # what the driver hashes: i integer bits, f/d/x a float, p a pointer, b the bytes behind a pointer
    size: int = 0  # for b
    mask: str = ""  # for b with padding: "1" for the bytes of its fields, "0" for padding (never compared)


@dataclass(frozen=True)
class _Stub:
    name: str
    result: str  # the result type with its `zeroext`/`signext`
    result_type: str
    parameters: tuple[_StubParameter, ...]
    variadic: bool
    logged: bool
    noreturn: bool = False  # the stub ends the trial as exit() would (it must not return into `unreachable`)


@dataclass
class _Harness:
    """What the driver needs to know, the same for every module under test, and each module's text for clang."""

    params: tuple[_Value, ...]
    param_names: tuple[str, ...]
    result: _Value | None
    regions: list[_Region]  # the parameters' buffers, the external globals, the stubs' buffer
    heap: tuple[int, int]
    extern_globals: dict[str, int]  # renamed external global -> address
    symbols: list[_Symbol]  # compared as (symbol, offset) across executables: writable ones first, externals last
    writable: int
    stubs: list[_Stub]
    stub_module: str
    texts: dict[str, str]  # role -> module text with renames and the call glue
    name: str
    constants: tuple[int, ...] = ()  # integers the original function uses: inputs are built from them too

    @classmethod
    def build(cls, original: str, rewritten: str, reference: str | None, name: str) -> _Harness:
        modules = [_parse(original, "original", name), _parse(rewritten, "rewritten", name)]
        if reference is not None:
            try:
                modules.append(_parse(reference, "reference", name))
            except _NotCheckable:
                pass  # without a reference, differences are reported as they are
        first = modules[0]
        _check_triple(first.module)
        function_type = first.target.global_value_type
        if function_type.is_function_vararg:
            raise _NotCheckable(f"@{name} is variadic")
        for other in modules[1:]:
            if str(other.target.global_value_type) != str(function_type):
                raise _NotCheckable(
                    f"the {other.role} @{name} has type {other.target.global_value_type}, the original {function_type}"
                )
        for module in modules:
            convention = _calling_convention(module.target)
            if convention not in _PORTABLE_CONVENTIONS:
                raise _NotCheckable(f"@{name} uses the {convention} calling convention")

        # Parameters and the return value, laid out in the argument block.
        regions: list[_Region] = []
        params: list[_Value] = []
        names: list[str] = []
        address = ARENA_ADDRESS

        def add_region(label: str, size: int, fill: int = FILL_ANY) -> int:
            nonlocal address
            used = size
            size = max(PAGE, -(-size // PAGE) * PAGE)
            regions.append(_Region(label, address, size, fill, used))
            address += size + PAGE  # a guard page after every buffer
            if address - ARENA_ADDRESS > ARENA_LIMIT:
                raise _NotCheckable("the buffers and globals it uses do not fit the harness's arena")
            return len(regions) - 1

        for index, (argument, type_ref) in enumerate(zip(first.target.arguments, function_type.get_function_parameters())):
            attributes = set()
            for module in modules:
                attributes |= set(_argument_attributes(list(module.target.arguments)[index]))
            unsupported = next((a for a in attributes if _UNSUPPORTED_ATTRIBUTES.match(a)), None)
            if unsupported:
                raise _NotCheckable(f"parameter {index + 1} of @{name} is `{unsupported}`")
            leaves = _value_layout(type_ref, first.target_data)
            size = first.target_data.get_abi_size(type_ref)
            if size > SLOT or len(leaves) > 64:
                raise _NotCheckable(f"parameter {index + 1} of @{name} ({type_ref}) is larger than {SLOT} bytes")
            nonnull = any(a == "nonnull" or a.startswith(("dereferenceable(", "byval(", "sret(", "byref(")) for a in attributes)
            label = f"%{argument.name}" if argument.name else f"%{index}"
            placed = []
            for leaf in leaves:
                region = add_region(label if len(leaves) == 1 else f"{label}[{len(placed)}]", _buffer_size(attributes)) if leaf.kind == "ptr" else -1
                placed.append(_Leaf(leaf.kind, index * SLOT + leaf.offset, region, nonnull))
            params.append(_Value(str(type_ref), size, tuple(placed)))
            names.append(label)
        return_type = function_type.get_function_return()
        result = None
        if str(return_type) != "void":
            leaves = _value_layout(return_type, first.target_data)
            size = first.target_data.get_abi_size(return_type)
            if size > SLOT:
                raise _NotCheckable(f"@{name} returns {return_type}, larger than {SLOT} bytes")
            result = _Value(str(return_type), size, tuple(leaves))

        constants = _constants(first.target)

        # Externals.
        stubs: dict[str, _Stub] = {}
        allocators: set[str] = set()
        streams: set[str] = set()
        unsupported_calls: dict[str, str] = {}
        extern_sizes: dict[str, int] = {}
        extern_fills: dict[str, int] = {}
        reached: set[str] = set()
        for module in modules:
            reached |= _reachable(module.module, module.target)
            for function in module.module.functions:
                if not function.is_declaration or function.name.startswith("llvm.") or function.name in REAL_FUNCTIONS:
                    continue
                declared = str(function.global_value_type)
                if ALLOCATORS.get(function.name) == declared:
                    allocators.add(function.name)
                    continue
                if STREAMS.get(function.name) == declared:
                    streams.add(function.name)
                    continue
                stub = _stub_for(function, module)
                if isinstance(stub, str):
                    unsupported_calls.setdefault(function.name, stub)
                    continue
                known = stubs.get(function.name)
                if known is not None:
                    noreturn = known.noreturn or stub.noreturn
                    stub = dataclasses.replace(known, logged=noreturn or (known.logged and stub.logged), noreturn=noreturn)
                stubs[function.name] = stub
            for variable in module.module.global_variables:
                if not variable.is_declaration or variable.name in REAL_GLOBALS:
                    continue
                line = _global_line(variable)
                if "thread_local" in line:
                    raise _NotCheckable(f"uses the thread-local external @{variable.name}")
                if str(variable.type) != "ptr":
                    raise _NotCheckable(f"uses @{variable.name} in another address space")
                size = module.target_data.get_abi_size(variable.global_value_type)
                extern_sizes[variable.name] = max(size, extern_sizes.get(variable.name, 0))
                value_type = variable.global_value_type
                if "ptr" in str(value_type):
                    extern_fills[variable.name] = FILL_POINTERS
                elif value_type.type_kind == llvm.TypeKind.array and str(value_type).endswith(" x i8]") and " constant " in f" {line} ":
                    extern_fills[variable.name] = FILL_STRING
        for callee, problem in unsupported_calls.items():
            if callee in reached:
                raise _NotCheckable(f"calls external @{callee} with an unsupported signature ({problem})")
        extern_globals = {}
        for variable_name in sorted(extern_sizes):
            region = add_region(_token(variable_name), extern_sizes[variable_name], extern_fills.get(variable_name, FILL_ANY))
            extern_globals[variable_name] = regions[region].address
        stub_region = add_region("memory returned by external calls", STUB_BUFFER_BYTES)
        heap = (address, HEAP_BYTES)
        if heap[0] + HEAP_BYTES - ARENA_ADDRESS > ARENA_LIMIT:
            raise _NotCheckable("the buffers and globals it uses do not fit the harness's arena")
        del stub_region

        stub_list = [stubs[key] for key in sorted(stubs)]
        stub_ids = {stub.name: index for index, stub in enumerate(stub_list)}

        # Symbols defined by every module, then the externals as linked: compared as (symbol, offset) wherever a
        # pointer to them shows up, since code size moves them from one executable to the next.
        defined = _shared_symbols(modules)
        writable = [s for s in defined if s.writable]
        externals = []
        for external in sorted({f.name for m in modules for f in m.module.functions if f.is_declaration and not f.name.startswith("llvm.")}):
            if external in stub_ids:
                link = f"__passpilot_stub.{stub_ids[external]}"
            elif external in allocators:
                link = f"__passpilot_alloc_{external}"
            elif external in streams:
                link = f"__passpilot_stream_{external}"
            elif external in unsupported_calls:
                link = _trap_name(external)
            else:
                link = external
            if link.isascii() and link.isprintable() and '"' not in link and "\\" not in link:
                externals.append(_Symbol(external, 0, False, link))
        symbols = writable + [s for s in defined if not s.writable] + externals
        texts = {}
        for module in modules:
            texts[module.role] = _prepare_module(module, name, stub_ids, allocators, streams, set(unsupported_calls), extern_globals, symbols)
        return cls(
            params=tuple(params),
            param_names=tuple(names),
            result=result,
            regions=regions,
            heap=heap,
            extern_globals={f"__passpilot_extern.{i}": extern_globals[n] for i, n in enumerate(sorted(extern_globals))},
            symbols=symbols,
            writable=len(writable),
            stubs=stub_list,
            stub_module=_stub_module(stub_list, set(unsupported_calls), [s.link for s in externals]),
            texts=texts,
            name=name,
            constants=constants,
        )

    def tables_source(self) -> str:
        """The C tables the driver reads: parameters, buffers, symbols and stubs of this check."""
        leaves = [leaf for value in self.params for leaf in value.leaves]
        result_leaves = list(self.result.leaves) if self.result else []
        arena_end = self.heap[0] + self.heap[1]
        args_bytes = max(SLOT, SLOT * len(self.params))
        ret_bytes = max(16, self.result.size if self.result else 0)
        count = len(self.symbols)
        lines = [
            DRIVER_PRELUDE,
            f"const int pp_args_bytes = {args_bytes}, pp_ret_bytes = {ret_bytes}, pp_nleaves = {len(leaves)};",
            f"const int pp_nret_leaves = {len(result_leaves)}, pp_nregions = {len(self.regions)};",
            f"const int pp_nsymbols = {count}, pp_nwritable = {self.writable};",
            f"const uintptr_t pp_arena_addr = {ARENA_ADDRESS:#x}UL, pp_arena_bytes = {arena_end - ARENA_ADDRESS:#x}UL;",
            f"const uintptr_t pp_heap_addr = {self.heap[0]:#x}UL, pp_heap_bytes = {self.heap[1]:#x}UL;",
            f"const uintptr_t pp_stub_buffer = {self.regions[-1].address:#x}UL, pp_stub_buffer_bytes = {self.regions[-1].size}UL;",
            f"unsigned char pp_args[{args_bytes}] __attribute__((aligned(64)));",
            f"unsigned char pp_ret[{ret_bytes}] __attribute__((aligned(64)));",
            f"uintptr_t pp_sorted_address[{count + 1}];",
            f"size_t pp_sorted_size[{count + 1}];",
            f"int pp_sorted_index[{count + 1}], pp_order[{count + 1}];",
        ]

        def leaf_row(leaf: _Leaf) -> str:
            return f"{{{_KINDS[leaf.kind]}, {leaf.offset}, {leaf.region}, {int(leaf.nonnull)}}}"

        lines.append("const pp_leaf pp_leaves[] = {" + ", ".join([leaf_row(l) for l in leaves] or ["{0}"]) + "};")
        lines.append("const pp_leaf pp_ret_leaves[] = {" + ", ".join([leaf_row(l) for l in result_leaves] or ["{0}"]) + "};")
        lines.append(
            "const pp_region pp_regions[] = {"
            + ", ".join([f"{{{r.address:#x}UL, {r.size}UL, {r.fill}, {r.used}UL}}" for r in self.regions] or ["{0}"])
            + "};"
        )
        rows = []
        for index, symbol in enumerate(self.symbols):
            if symbol.link is None:  # the module's own: an alias the glue defines
                lines.append(f"extern unsigned char __passpilot_symbol_{index}[];")
                rows.append(f"{{__passpilot_symbol_{index}, {symbol.size}UL, 0}}")
            else:  # an external: its address comes from the stubs' table (see `_stub_module`)
                rows.append("{0, 0UL, 0}")
        externals = sum(1 for symbol in self.symbols if symbol.link is not None)
        lines.append("pp_symbol pp_symbols[] = {" + ", ".join(rows or ["{0}"]) + "};")
        lines.append(f"const int pp_nexternals = {externals};")
        lines.append(f"const int pp_nconstants = {len(self.constants)};")
        lines.append("const int64_t pp_constants[] = {" + ", ".join([f"{c}LL" for c in self.constants] or ["0"]) + "};")
        kinds = ['"' + "".join(p.kind for p in stub.parameters) + '"' for stub in self.stubs]
        lines.append("const char *const pp_stub_kinds[] = {" + ", ".join(kinds or ['""']) + "};")
        masks = ['"' + mask + '"' for mask in stub_masks(self.stubs)]
        lines.append("const char *const pp_masks[] = {" + ", ".join(masks or ['""']) + "};")
        lines.append("const unsigned char pp_stub_logged[] = {" + ", ".join([str(int(s.logged)) for s in self.stubs] or ["0"]) + "};")
        return "\n".join(lines) + "\n"

    def link_arguments(self) -> list[str]:
        arguments = []
        for symbol, address in self.extern_globals.items():
            arguments += ["-Xlinker", f"--defsym={symbol}={address:#x}"]
        return arguments


def _constants(function: llvm.ValueRef, limit: int = 48) -> tuple[int, ...]:
    """Integer constants the function compares, switches or computes with (beyond 0, 1 and -1)."""
    found: dict[int, None] = {}
    for block in function.blocks:
        for instruction in block.instructions:
            values = []
            if instruction.opcode == "switch":  # case values are not operands that llvmlite lists
                values = [int(v) for v in re.findall(r"i\d+ (-?\d+), label", str(instruction))]
            for operand in instruction.operands:
                if operand.value_kind == llvm.ValueKind.constant_int:
                    try:
                        values.append(operand.get_constant_value(signed_int=True))
                    except (ValueError, TypeError):
                        continue
            for value in values:
                if isinstance(value, int) and value not in (0, 1, -1) and -(2**62) < value < 2**62:
                    found[value] = None
                    if len(found) >= limit:
                        return tuple(found)
    return tuple(found)


def _buffer_size(attributes: set[str]) -> int:
    size = PARAM_BUFFER_BYTES
    for attribute in attributes:
        match = re.match(r"dereferenceable(?:_or_null)?\((\d+)\)", attribute)
        if match:
            size = max(size, int(match.group(1)))
    return size


def _check_triple(module: llvm.ModuleRef) -> None:
    triple = module.triple
    host = llvm.get_process_triple()
    if not triple:
        return
    arch, host_arch = triple.split("-", 1)[0], host.split("-", 1)[0]
    if arch != host_arch or not any(system in triple for system in ("linux", "unknown-unknown", "-elf")):
        raise _NotCheckable(f"the module targets {triple}; only {host} code runs here")


def _stub_for(function: llvm.ValueRef, module: _Module) -> _Stub | str:
    """The stub that stands in for an external, or why none can."""
    if not function.name.isprintable():
        return "its name"
    convention = _calling_convention(function)
    if convention not in _PORTABLE_CONVENTIONS:
        return f"the {convention} calling convention"
    function_type = function.global_value_type
    result_type = str(function_type.get_function_return())
    if result_type != "void" and result_type not in _KINDS:
        return f"it returns {result_type}"
    parameters = []
    for index, (type_ref, argument) in enumerate(zip(function_type.get_function_parameters(), function.arguments)):
        type_text = str(type_ref)
        if type_text not in _KINDS:
            return f"parameter {index + 1} is {type_text}"
        attributes = _argument_attributes(argument)
        unsupported = next((a for a in attributes if _UNSUPPORTED_ATTRIBUTES.match(a) or a.startswith(("inalloca(", "preallocated("))), None)
        if unsupported:
            return f"a `{unsupported}` parameter"
        passed = next((a for a in attributes if a.startswith(("byval(", "sret("))), None)
        if passed is None:
            parameters.append(_StubParameter(type_text, _STUB_ARG_KINDS.get(type_text, "i")))
            continue
        pointee = _named_type(module.module, passed[passed.index("(") + 1 : -1])
        if pointee is None:
            return f"a `{passed}` parameter"
        size, align = module.target_data.get_abi_size(pointee), module.target_data.get_abi_alignment(pointee)
        word = passed.split("(", 1)[0]
        mask = ""
        if word == "byval":
            try:
                covered = bytearray(b"0" * size)
                for leaf in _value_layout(pointee, module.target_data):
                    covered[leaf.offset : leaf.offset + _SIZES[leaf.kind]] = b"1" * _SIZES[leaf.kind]
                mask = "" if b"0" not in covered else covered.decode()
            except _NotCheckable:
                mask = ""
            if size > 4096:
                return f"a `{passed}` parameter of {size} bytes"
        parameters.append(_StubParameter(f"ptr {word}([{size} x i8]) align {align}", "b" if word == "byval" else "p", size, mask))
    result = " ".join([*_return_attributes(function), result_type])
    noreturn = "noreturn" in _function_attributes(function).split() or function.name in module.noreturn_callees
    logged = noreturn or _may_write(function)
    return _Stub(function.name, result, result_type, tuple(parameters), function_type.is_function_vararg, logged, noreturn)


def stub_masks(stubs: list[_Stub]) -> list[str]:
    """The padding masks of by-value parameters, in the order of the driver's table."""
    return sorted({p.mask for stub in stubs for p in stub.parameters if p.mask})


def _named_type(module: llvm.ModuleRef, text: str):
    """The TypeRef of `%name` in the module (byval and sret name their struct)."""
    name = text[1:] if text.startswith("%") else None
    if name is None:
        return None
    name = name[1:-1] if name.startswith('"') and name.endswith('"') else name
    return next((t for t in module.struct_types if t.name == name), None)


def _stub_module(stubs: list[_Stub], trapping: Iterable[str], externals: list[str]) -> str:
    """IR definitions of the stubs (each stores its arguments in slots and asks the driver for a result), and
    the addresses of all externals as linked, for the driver's symbol table."""
    lines = [
        f'target triple = "{llvm.get_process_triple()}"',
        "declare void @__passpilot_stub_call(i32, ptr, i32, ptr, i32)",
        "declare void @__passpilot_stub_exit(i32)",
        "declare void @llvm.trap()",
    ]
    masks = stub_masks(stubs)
    for index, stub in enumerate(stubs):
        parameters = stub.parameters
        slots = max(1, len(parameters))
        signature = ", ".join([f"{p.text} %a{i}" for i, p in enumerate(parameters)] + (["..."] if stub.variadic else []))
        body = [
            f"define {stub.result} @__passpilot_stub.{index}({signature}) {{",
            f"  %args = alloca [{slots * 16} x i8], align 16",
            f"  store [{slots * 16} x i8] zeroinitializer, ptr %args, align 16",
        ]
        for i, parameter in enumerate(parameters):
            value_type = parameter.text.split(" ", 1)[0]
            body.append(f"  %s{i} = getelementptr inbounds i8, ptr %args, i64 {16 * i}")
            body.append(f"  store {value_type} %a{i}, ptr %s{i}, align 16")
            if parameter.kind == "b":  # the size, and which of the stub's padding masks applies (0: none)
                mask = masks.index(parameter.mask) + 1 if parameter.mask else 0
                body.append(f"  %n{i} = getelementptr inbounds i8, ptr %args, i64 {16 * i + 8}")
                body.append(f"  store i64 {parameter.size | (mask << 32)}, ptr %n{i}, align 8")
        kind = _STUB_RETURN_KINDS.get(stub.result_type, 2)
        body.append("  %ret = alloca [16 x i8], align 16")
        body.append(f"  call void @__passpilot_stub_call(i32 {index}, ptr %args, i32 {len(parameters)}, ptr %ret, i32 {kind})")
        if stub.noreturn:
            body.append(f"  call void @__passpilot_stub_exit(i32 {index})")
            body.append("  unreachable")
        elif stub.result_type == "void":
            body.append("  ret void")
        else:
            body.append(f"  %r = load {stub.result_type}, ptr %ret, align 16")
            body.append(f"  ret {stub.result_type} %r")
        body.append("}")
        lines += body
    for name in sorted(trapping):
        lines.append(f"define void @{_trap_name(name)}() {{\n  call void @llvm.trap()\n  unreachable\n}}")
    defined = {f"__passpilot_stub.{index}" for index in range(len(stubs))} | {_trap_name(name) for name in trapping}
    for link in sorted(set(externals) - defined):
        lines.append(f"declare void {_token(link)}()")
    addresses = ", ".join(f"ptr {_token(link)}" for link in externals) or "ptr null"
    lines.append(f"@pp_external_addresses = constant [{max(1, len(externals))} x ptr] [{addresses}]")
    return "\n".join(lines) + "\n"


def _trap_name(name: str) -> str:
    return "__passpilot_trap." + re.sub(r"[^A-Za-z0-9_.]", lambda m: f"${ord(m.group()):x}", name)


def _shared_symbols(modules: list[_Module]) -> list[_Symbol]:
    """(name, size, writable) of the globals and functions that every module defines."""
    per_module = []
    for module in modules:
        found: dict[str, tuple[int, bool]] = {}
        for variable in module.module.global_variables:
            if variable.is_declaration or not variable.name or variable.name.startswith(("llvm.", "__passpilot")):
                continue
            line = _global_line(variable)
            if "thread_local" in line or str(variable.type) != "ptr" or "available_externally" in line:
                continue
            kind = _GLOBAL_KIND.search(line)
            writable = kind is not None and kind.group(1) == "global"
            found[variable.name] = (module.target_data.get_abi_size(variable.global_value_type), writable)
        for function in module.module.functions:
            if function.is_declaration or not function.name or function.name.startswith(("llvm.", "__passpilot")):
                continue
            if "available_externally" in _header(function):
                continue
            found[function.name] = (0, False)
        per_module.append(found)
    names = set(per_module[0])
    for found in per_module[1:]:
        names &= set(found)
    return [_Symbol(n, per_module[0][n][0], per_module[0][n][1] and all(f[n][1] for f in per_module)) for n in sorted(names)]


def _prepare_module(
    module: _Module,
    name: str,
    stub_ids: dict[str, int],
    allocators: set[str],
    streams: set[str],
    trapping: set[str],
    extern_globals: dict[str, int],
    symbols: list[_Symbol],
) -> str:
    """The module with externals renamed to the harness's, and the glue the driver calls."""
    target = module.target
    convention = _calling_convention(target)
    return_attributes = _return_attributes(target)
    parameter_types = [str(t) for t in target.global_value_type.get_function_parameters()]
    arguments = list(target.arguments)
    for function in module.module.functions:
        if function.is_declaration:
            if function.name in stub_ids:
                function.name = f"__passpilot_stub.{stub_ids[function.name]}"
            elif function.name in allocators:
                function.name = f"__passpilot_alloc_{function.name}"
            elif function.name in streams:
                function.name = f"__passpilot_stream_{function.name}"
            elif function.name in trapping:
                function.name = _trap_name(function.name)
        elif function.name in DRIVER_CALLS:
            function.name = f"__passpilot_user.{function.name}"
    extern_index = {name: index for index, name in enumerate(sorted(extern_globals))}
    for variable in module.module.global_variables:
        if variable.is_declaration and variable.name in extern_index:
            variable.name = f"__passpilot_extern.{extern_index[variable.name]}"
    # A defined `main` or `write` was renamed so that the driver keeps the C library's: alias the new names.
    renamed = {symbol.name: symbol.name for symbol in symbols if symbol.link is None}
    for variable in module.module.global_variables:
        if not variable.is_declaration and variable.name in DRIVER_CALLS:
            variable.name = f"__passpilot_user.{variable.name}"
    for symbol in renamed:
        if symbol in DRIVER_CALLS:
            renamed[symbol] = f"__passpilot_user.{symbol}"
    target_token = _token(target.name)
    text = str(module.module)

    glue = ["", "define void @__passpilot_call(ptr %args, ptr %ret) {"]
    call_arguments = []
    for index, type_text in enumerate(parameter_types):
        glue.append(f"  %p{index} = getelementptr inbounds i8, ptr %args, i64 {index * SLOT}")
        glue.append(f"  %a{index} = load {type_text}, ptr %p{index}, align 1")
        attributes = [a for a in _argument_attributes(arguments[index]) if _ABI_ATTRIBUTES.match(a)]
        call_arguments.append(" ".join([type_text, *attributes, f"%a{index}"]))
    return_type = str(target.global_value_type.get_function_return())
    call = f"call {convention + ' ' if convention else ''}{' '.join(return_attributes) + ' ' if return_attributes else ''}{return_type} {target_token}({', '.join(call_arguments)})"
    if return_type == "void":
        glue.append(f"  {call}")
    else:
        glue.append(f"  %r = {call}")
        glue.append(f"  store {return_type} %r, ptr %ret, align 1")
    glue.append("  ret void")
    glue.append("}")
    for index, symbol in enumerate(symbols):
        if symbol.link is None:
            glue.append(f"@__passpilot_symbol_{index} = alias i8, ptr {_token(renamed[symbol.name])}")
    return text + "\n".join(glue) + "\n"


# -- building and running ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    status: str  # R returned, E exited (exit() or a non-zero status), S signal, H hung, X could not run
    code: int
    hash: str

    @property
    def normal(self) -> bool:
        return self.status in ("R", "E")

    def same_as(self, other: _Outcome) -> bool:
        if self.normal and other.normal:
            return (self.status, self.code, self.hash) == (other.status, other.code, other.hash)
        return not self.normal and not other.normal

    def describe(self) -> str:
        if self.status == "S":
            return f"crashed ({_signal_name(self.code)})"
        if self.status == "H":
            return "hung (stopped after the time limit)"
        if self.status == "E" and self.code == NORETURN_EXIT:
            return "ended in an external that does not return"
        if self.status == "E":
            return f"called exit({self.code})"
        if self.status == "X":
            return "could not be run"
        return "returned"


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass
class _Runner:
    harness: _Harness
    folder: Path
    clang: str
    driver: Path
    options: BehaviourOptions
    executables: dict[str, Path] = field(default_factory=dict)
    objects: list[Path] = field(default_factory=list)

    def _support(self) -> None:
        if self.objects:
            return
        (self.folder / "tables.c").write_text(self.harness.tables_source())
        (self.folder / "stubs.ll").write_text(self.harness.stub_module)
        problem = _run_clang(self.clang, ["-O0", "-w", "-fno-pie", "-c", "tables.c", "stubs.ll"], "the test tables", self.folder)
        if problem:
            raise _NotCheckable(problem)
        self.objects = [self.driver, self.folder / "tables.o", self.folder / "stubs.o"]

    def executable(self, role: str) -> Path:
        if role in self.executables:
            return self.executables[role]
        self._support()
        source = self.folder / f"{role}.ll"
        source.write_text(self.harness.texts[role])
        output = self.folder / role
        problem = _run_clang(
            self.clang,
            ["-O0", "-w", "-fno-pie", "-no-pie", str(source), *map(str, self.objects), "-o", str(output), "-lm",
             *self.harness.link_arguments()],
            f"the {role} module",
            self.folder,
        )
        if problem:
            raise _NotCheckable(problem)
        self.executables[role] = output
        return output

    def _run(self, role: str, mode: str, count: int, timeout: float, budget: float) -> list[str]:
        executable = self.executable(role)
        report = self.folder / f"{role}-{mode}-{count}.txt"
        report.unlink(missing_ok=True)
        arguments = [str(executable), mode, str(report), str(self.options.seed), str(count), str(max(1, int(timeout * 1000))),
                     str(int(budget * 1000))]
        limit = budget + timeout * 4 + 30 if mode == "run" else timeout * 4 + 30
        try:
            subprocess.run(
                arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=limit, cwd=self.folder, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
            )
        except subprocess.TimeoutExpired:
            pass  # whatever the report holds so far still counts
        except OSError as error:
            raise _NotCheckable(f"could not run the {role} executable: {error}") from None
        try:
            return report.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def outcomes(self, role: str) -> list[_Outcome]:
        lines = self._run(role, "run", self.options.trials, self.options.trial_timeout, self.options.run_budget)
        for line in lines:
            if line.startswith("error "):
                raise _NotCheckable(f"the test driver failed: {line[6:]}")
        found = []
        for line in lines:
            parts = line.split()
            if len(parts) == 5 and parts[0] == "T":
                found.append(_Outcome(parts[2], int(parts[3]), parts[4]))
        return found

    def detail(self, role: str, trial: int, timeout: float) -> dict:
        lines = self._run(role, "detail", trial, timeout, timeout)
        detail: dict = {"buffers_before": {}, "buffers_after": {}, "globals": {}, "calls": [], "streams": []}
        for line in lines:
            parts = line.split(" ")
            if parts[0] in ("args", "ret", "before", "after", "heap", "global", "out") and len(parts) >= 3:
                data = bytes.fromhex(parts[3]) if len(parts) > 3 else b""
                index = int(parts[1])
                if parts[0] == "before":
                    detail["buffers_before"][index] = data
                elif parts[0] == "after":
                    detail["buffers_after"][index] = data
                elif parts[0] == "global":
                    detail["globals"][index] = data
                else:
                    detail[parts[0]] = data
            elif parts[0] == "call" and len(parts) == 3:
                detail["calls"].append((int(parts[1]), parts[2]))
            elif parts[0] == "stream" and len(parts) == 5:
                detail["streams"].append((parts[2], int(parts[3]), parts[4]))
            elif parts[0] == "T" and len(parts) == 5:
                detail["outcome"] = _Outcome(parts[2], int(parts[3]), parts[4])
        return detail

    def compare(self) -> BehaviourCheck:
        original = self.outcomes("original")
        if not original:
            raise _NotCheckable("the original program did not run any input (it fails before the function is called)")
        rewritten = self.outcomes("rewritten")
        if not rewritten:
            return BehaviourCheck(
                "different", 0, "the rewritten program fails before the function is called",
                "no input ran: the rewritten program stopped before the first trial",
            )
        count = min(len(original), len(rewritten))
        reference: list[_Outcome] | None = None
        agreed = both_failed = original_failed = undefined = mismatches = confirmations = 0
        first: int | None = None
        for trial in range(count):
            o, r = original[trial], rewritten[trial]
            if (o.status == "H" or r.status == "H") and not o.same_as(r) and confirmations < MAX_CONFIRMATIONS:
                confirmations += 1
                o, r = self._confirm(trial, o, r)
            if o.same_as(r):
                if o.normal:
                    agreed += 1
                else:
                    both_failed += 1
                continue
            if not o.normal:
                original_failed += 1
                continue
            if "reference" in self.harness.texts:
                if reference is None:
                    try:
                        reference = self.outcomes("reference")
                    except _NotCheckable:
                        reference = []
                if trial < len(reference) and reference[trial].same_as(r):
                    undefined += 1
                    continue
            mismatches += 1
            if first is None:
                first = trial
        compared = agreed + both_failed + mismatches + undefined
        common = dict(both_failed=both_failed, original_failed=original_failed, undefined=undefined, mismatches=mismatches)
        if first is not None:
            return BehaviourCheck(
                "different", compared, f"different results on {mismatches} of {compared} inputs",
                self._counterexample(first), **common,
            )
        if agreed == 0:
            crash = next((o for o in original[:count] if not o.normal), None)
            why = crash.describe() if crash else "did not run"
            return BehaviourCheck(
                "not-checked", compared, f"the original {why} on every input, so no result could be compared", None, **common
            )
        return BehaviourCheck("same", compared, None, None, **common)

    def _confirm(self, trial: int, o: _Outcome, r: _Outcome) -> tuple[_Outcome, _Outcome]:
        """A hang on one side only may be a slow input: run that trial again with a longer limit."""
        longer = min(10 * self.options.trial_timeout, 5.0)
        if o.status == "H":
            o = self.detail("original", trial, longer).get("outcome", o)
        if r.status == "H":
            r = self.detail("rewritten", trial, longer).get("outcome", r)
        return o, r

    # -- the counterexample ----------------------------------------------------------------------

    def _counterexample(self, trial: int) -> str:
        timeout = self.options.trial_timeout
        original = self.detail("original", trial, timeout)
        rewritten = self.detail("rewritten", trial, timeout)
        harness = self.harness
        arguments = original.get("args", b"")
        shown = []
        for index, value in enumerate(harness.params):
            shown.append(f"{value.type} {self._value(value, arguments, original)}")
        lines = [f"input: @{harness.name}({', '.join(shown)})"]
        for label, data in (("original", original), ("rewrite", rewritten)):
            outcome: _Outcome | None = data.get("outcome")
            text = outcome.describe() if outcome else "did not run"
            if outcome is not None and outcome.status == "R" and harness.result is not None:
                text += f" {harness.result.type} {self._value(harness.result, data.get('ret', b''), data)}"
            lines.append(f"{label}: {text}")
        o_outcome, r_outcome = original.get("outcome"), rewritten.get("outcome")
        if o_outcome and r_outcome and o_outcome.normal and r_outcome.normal:
            lines += self._differences(original, rewritten)
        return "\n".join(lines)

    def _value(self, value: _Value, data: bytes, detail: dict) -> str:
        parts = [self._scalar(leaf, data, leaf.offset, detail) for leaf in value.leaves]
        if len(parts) == 1:
            return parts[0]
        return "{" + ", ".join(parts) + "}"

    def _scalar(self, leaf: _Leaf, data: bytes, offset: int, detail: dict) -> str:
        raw = data[offset : offset + _SIZES[leaf.kind]]
        if len(raw) < _SIZES[leaf.kind]:
            return "?"
        if leaf.kind == "i1":
            return "true" if raw[0] & 1 else "false"
        if leaf.kind.startswith("i"):
            return str(int.from_bytes(raw, "little", signed=True))
        if leaf.kind == "float":
            return repr(struct.unpack("<f", raw)[0])
        if leaf.kind == "double":
            return repr(struct.unpack("<d", raw)[0])
        if leaf.kind == "x86_fp80":
            return repr(_fp80(raw))
        return self._pointer(int.from_bytes(raw, "little"), leaf, detail)

    def _pointer(self, value: int, leaf: _Leaf, detail: dict) -> str:
        if value == 0:
            return "null"
        if value >> 60 == 0xE:
            return ("stdin", "stdout", "stderr")[value & 3] if value & 3 < 3 else f"{value:#x}"
        if value >> 60 == 0xF:
            index, offset = (value >> 32) & 0xFFFFFFF, value & 0xFFFFFFFF
            name = self.harness.symbols[index].name if index < len(self.harness.symbols) else "?"
            return _token(name) + (f" + {offset}" if offset else "")
        for index, region in enumerate(self.harness.regions):
            label, address, size = region.label, region.address, region.size
            if address <= value < address + size:
                offset = value - address
                where = f"buffer {label}" + (f" + {offset}" if offset else "")
                if leaf.region == index and offset == 0:
                    before = detail["buffers_before"].get(index, b"")[:16]
                    if before:
                        where += f" = [{before.hex(' ')} …]"
                return where
        heap, heap_size = self.harness.heap
        if heap <= value < heap + heap_size:
            return f"heap + {value - heap}"
        return f"{value:#x}"

    def _differences(self, original: dict, rewritten: dict) -> list[str]:
        lines = []
        harness = self.harness
        if original.get("ret") != rewritten.get("ret") and harness.result is None:
            lines.append("the return slot differs")
        for index, region in enumerate(harness.regions):
            label = region.label
            line = _first_difference(f"buffer {label}", original["buffers_after"].get(index, b""), rewritten["buffers_after"].get(index, b""))
            if line:
                lines.append(line)
        for index in range(harness.writable):
            name = _token(harness.symbols[index].name)
            line = _first_difference(name, original["globals"].get(index, b""), rewritten["globals"].get(index, b""))
            if line:
                lines.append(line)
        line = _first_difference("heap", original.get("heap", b""), rewritten.get("heap", b""))
        if line:
            lines.append(line)
        if original.get("out", b"") != rewritten.get("out", b""):
            lines.append(f"printed: original {_quote(original.get('out', b''))}, rewrite {_quote(rewritten.get('out', b''))}")
        if original["calls"] != rewritten["calls"]:
            names = [stub.name for stub in harness.stubs]

            def calls(data: dict) -> str:
                listed = [f"@{names[i]}" for i, _ in data["calls"][:8]]
                return (", ".join(listed) or "none") + (" …" if len(data["calls"]) > 8 else "")

            if [i for i, _ in original["calls"]] == [i for i, _ in rewritten["calls"]]:
                lines.append(f"calls to externals: the same ({calls(original)}), with different arguments")
            else:
                lines.append(f"calls to externals: original {calls(original)}; rewrite {calls(rewritten)}")
        if original["streams"] != rewritten["streams"]:
            def written(data: dict) -> str:
                return ", ".join(f"{count} bytes" for _, count, _ in data["streams"]) or "nothing"

            lines.append(f"written to FILE* streams: original {written(original)}; rewrite {written(rewritten)}")
        return lines


def _first_difference(label: str, a: bytes, b: bytes) -> str | None:
    if a == b:
        return None
    length = min(len(a), len(b))
    start = next((i for i in range(length) if a[i] != b[i]), length)
    end = start
    while end < length and end - start < 16 and a[end] != b[end]:
        end += 1
    end = max(end, min(start + 4, length))
    window = slice(start, max(end, start + 1))
    return f"{label} differs at byte {start}: original [{a[window].hex(' ')}], rewrite [{b[window].hex(' ')}]"


def _quote(data: bytes) -> str:
    text = data[:120].decode("utf-8", errors="replace")
    return repr(text) + (" …" if len(data) > 120 else "")


def _fp80(raw: bytes) -> float:
    mantissa = int.from_bytes(raw[:8], "little")
    exponent_sign = int.from_bytes(raw[8:10], "little")
    sign = -1.0 if exponent_sign & 0x8000 else 1.0
    exponent = exponent_sign & 0x7FFF
    if exponent == 0x7FFF:
        return sign * float("inf") if mantissa << 1 == 0 else float("nan")
    try:
        return sign * mantissa * 2.0 ** (exponent - 16383 - 63)
    except OverflowError:
        return sign * float("inf")
