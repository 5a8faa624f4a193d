"""A libLLVM worker process: runs checked pass lists in-process through LLVM's C API, one at a time.

`libllvm.py` starts it as `python -I -S llvm_worker.py LIBRARY MEMORY_MB [--fresh]` and talks to it over
stdin/stdout with length-prefixed JSON messages. It imports only the standard library, and nothing of
PassPilot: llvmlite's statically linked LLVM must never share a process with libLLVM. Whatever LLVM
does in here (a report_fatal_error abort, a segfault, an endless loop, runaway memory) ends or stalls
this process only; the parent reports the candidate as failed and starts another worker.

Two modes. A reusing worker runs its requests one after another in itself: the fast way to measure
many candidates. A fresh worker (`--fresh`) runs each request in a child forked before anything of the
request is read, so every run starts from one process state, as every `opt` process does. Some passes
give results that depend on where the allocator put objects (gvn-sink orders by address): after other
runs in the same process the same input can give another count, while a fresh run gives one answer
(usually `opt`'s; `opt` starts from its own state). Printed modules, the text PassPilot writes back,
and lists with such passes run in fresh workers. A fresh worker
only forks and waits; a child that dies makes it die the same way, so the parent sees what it always
sees: a worker gone, with its exit status and what LLVM printed.

Each request is run as `opt -passes=… -S` would run it: the module is named `<stdin>` (so ModuleID and
source_filename print the same), a target machine is created for the module's triple (none when the
module has no triple, as opt does), a missing data layout is taken from that target machine, the input
is verified, and the pipeline runs with verify-each off and one verification at the end.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import signal
import struct
import sys
import time

HEADER = struct.Struct(">I")  # every message: a 4-byte big-endian length, then that many bytes of JSON
MODULE_NAME = b"<stdin>"
EXIT_OUT_OF_MEMORY = 75  # the worker ran out of (its limited) memory in Python code
EXIT_END_OF_INPUT = 76  # a child found no request: the parent closed the pipe, the worker ends

# Test-only fault injection. When PASSPILOT_WORKER_FAULTS=1 is set in the worker's environment (the
# tests set it), a module containing the comment `; passpilot-fault: KIND` makes the worker fail that way
# before running passes: abort (os.abort, as report_fatal_error does), segv (a NULL read), hang (an
# endless loop), oom (allocate until the memory limit), garbage (answer with a module that is not IR).
# Without the variable the comment is ignored.
FAULTS_VARIABLE = "PASSPILOT_WORKER_FAULTS"
FAULT_MARKER = b"; passpilot-fault: "

# Every target LLVM has had since 17; a library initializes those it was built with (the symbols exist).
TARGETS = (
    "AArch64", "AMDGPU", "ARC", "ARM", "AVR", "BPF", "CSKY", "DirectX", "Hexagon", "Lanai", "LoongArch", "M68k",
    "Mips", "MSP430", "NVPTX", "PowerPC", "RISCV", "Sparc", "SPIRV", "SystemZ", "VE", "WebAssembly", "X86", "XCore",
    "Xtensa",
)
_CALL_OPCODE = 34  # LLVMCall in llvm-c/Core.h's LLVMOpcode
_RETURN_STATUS = 2  # LLVMReturnStatusAction
_CODEGEN_DEFAULT, _RELOC_DEFAULT, _CODE_MODEL_DEFAULT = 2, 0, 0


def encode_message(message: dict) -> bytes:
    data = json.dumps(message).encode()
    return HEADER.pack(len(data)) + data


def _read_exactly(descriptor: int, size: int) -> bytes:
    """`size` bytes from a file descriptor, fewer only at end of input. Unbuffered: the next child that
    reads the same pipe must find the next request there, not in this child's buffer."""
    chunks = []
    while size:
        chunk = os.read(descriptor, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_message(descriptor: int) -> dict | None:
    """The next message from a file descriptor, or None at end of input."""
    header = _read_exactly(descriptor, HEADER.size)
    if len(header) < HEADER.size:
        return None
    (length,) = HEADER.unpack(header)
    data = _read_exactly(descriptor, length)
    if len(data) < length:
        return None
    return json.loads(data)


class LLVM:
    """The few C API functions a worker needs, typed for ctypes."""

    def __init__(self, path: str):
        self.lib = ctypes.CDLL(path)
        p, i, u, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p
        P = ctypes.POINTER
        self._declare("LLVMContextCreate", p)
        self._declare("LLVMContextDispose", None, p)
        self._declare("LLVMCreateMemoryBufferWithMemoryRangeCopy", p, s, ctypes.c_size_t, s)
        self._declare("LLVMParseIRInContext", i, p, p, P(p), P(p))
        self._declare("LLVMDisposeModule", None, p)
        self._declare("LLVMDisposeMessage", None, p)
        self._declare("LLVMGetTarget", s, p)
        self._declare("LLVMGetDataLayoutStr", s, p)
        self._declare("LLVMGetTargetFromTriple", i, s, P(p), P(p))
        self._declare("LLVMCreateTargetMachine", p, p, s, s, s, i, i, i)
        self._declare("LLVMDisposeTargetMachine", None, p)
        self._declare("LLVMCreateTargetDataLayout", p, p)
        self._declare("LLVMSetModuleDataLayout", None, p, p)
        self._declare("LLVMDisposeTargetData", None, p)
        self._declare("LLVMCreatePassBuilderOptions", p)
        self._declare("LLVMPassBuilderOptionsSetVerifyEach", None, p, i)
        self._declare("LLVMDisposePassBuilderOptions", None, p)
        self._declare("LLVMRunPasses", p, p, s, p, p)
        self._declare("LLVMGetErrorMessage", p, p)
        self._declare("LLVMDisposeErrorMessage", None, p)
        self._declare("LLVMVerifyModule", i, p, i, P(p))
        self._declare("LLVMPrintModuleToString", p, p)
        self._declare("LLVMGetFirstFunction", p, p)
        self._declare("LLVMGetNextFunction", p, p)
        self._declare("LLVMIsDeclaration", i, p)
        self._declare("LLVMGetFirstBasicBlock", p, p)
        self._declare("LLVMGetNextBasicBlock", p, p)
        self._declare("LLVMGetFirstInstruction", p, p)
        self._declare("LLVMGetNextInstruction", p, p)
        self._declare("LLVMGetInstructionOpcode", i, p)
        self._declare("LLVMGetCalledValue", p, p)
        self._declare("LLVMGetValueName2", p, p, P(ctypes.c_size_t))
        self._declare("LLVMGetVersion", None, P(u), P(u), P(u))
        major, minor, patch = u(), u(), u()
        self.lib.LLVMGetVersion(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(patch))
        self.version = f"{major.value}.{minor.value}.{patch.value}"
        self.targets = []
        for target in TARGETS:
            steps = [getattr(self.lib, f"LLVMInitialize{target}{part}", None) for part in ("TargetInfo", "Target", "TargetMC")]
            if all(steps):
                for step in steps:
                    step.restype, step.argtypes = None, []
                    step()
                self.targets.append(target)

    def _declare(self, name: str, restype, *argtypes) -> None:
        function = getattr(self.lib, name)  # AttributeError: the library lacks part of the C API
        function.restype, function.argtypes = restype, list(argtypes)

    def take_message(self, pointer: int | None) -> str:
        if not pointer:
            return ""
        text = ctypes.string_at(pointer).decode(errors="replace")
        self.lib.LLVMDisposeMessage(pointer)
        return text

    def run(self, module: bytes, passes: str, want_output: bool) -> dict:
        lib = self.lib
        context = lib.LLVMContextCreate()
        try:
            buffer = lib.LLVMCreateMemoryBufferWithMemoryRangeCopy(module, len(module), MODULE_NAME)
            handle, message = ctypes.c_void_p(), ctypes.c_void_p()
            if lib.LLVMParseIRInContext(context, buffer, ctypes.byref(handle), ctypes.byref(message)):  # owns buffer
                return {"error": f"the module does not parse: {self.take_message(message.value).strip()}"}
            try:
                return self._optimize(handle, passes.encode(), want_output)
            finally:
                lib.LLVMDisposeModule(handle)
        finally:
            lib.LLVMContextDispose(context)

    def _optimize(self, module, passes: bytes, want_output: bool) -> dict:
        lib = self.lib
        machine, problem = self._target_machine(module)
        if problem:
            return {"error": problem}
        try:
            message = ctypes.c_void_p()
            if lib.LLVMVerifyModule(module, _RETURN_STATUS, ctypes.byref(message)):
                return {"error": f"input module is broken: {self.take_message(message.value).strip()}"}
            self.take_message(message.value)
            options = lib.LLVMCreatePassBuilderOptions()
            lib.LLVMPassBuilderOptionsSetVerifyEach(options, 0)
            try:
                error = lib.LLVMRunPasses(module, passes, machine, options)
            finally:
                lib.LLVMDisposePassBuilderOptions(options)
            if error:
                pointer = lib.LLVMGetErrorMessage(error)
                text = ctypes.string_at(pointer).decode(errors="replace")
                lib.LLVMDisposeErrorMessage(pointer)
                return {"error": text.strip()}
            if lib.LLVMVerifyModule(module, _RETURN_STATUS, ctypes.byref(message)):
                return {"error": f"the optimized module does not verify: {self.take_message(message.value).strip()}"}
            self.take_message(message.value)
            count, defined = self._count(module)
            output = self.take_message(lib.LLVMPrintModuleToString(module)) if want_output else None
            return {"count": count, "defined": defined, "output": output}
        finally:
            if machine:
                lib.LLVMDisposeTargetMachine(machine)

    def _target_machine(self, module) -> tuple[int | None, str | None]:
        """A target machine for the module's triple, and its data layout where the module has none (as opt)."""
        lib = self.lib
        triple = lib.LLVMGetTarget(module) or b""
        if not triple:
            return None, None
        target, message = ctypes.c_void_p(), ctypes.c_void_p()
        if lib.LLVMGetTargetFromTriple(triple, ctypes.byref(target), ctypes.byref(message)):
            detail = self.take_message(message.value).strip()
            if triple.split(b"-")[0] in (b"", b"unknown"):
                return None, None  # opt runs such modules without a target machine
            return None, f"unrecognized target triple '{triple.decode(errors='replace')}': {detail}"
        machine = lib.LLVMCreateTargetMachine(target, triple, b"", b"", _CODEGEN_DEFAULT, _RELOC_DEFAULT, _CODE_MODEL_DEFAULT)
        if not machine:
            return None, f"no target machine for '{triple.decode(errors='replace')}'"
        if not lib.LLVMGetDataLayoutStr(module):
            layout = lib.LLVMCreateTargetDataLayout(machine)
            lib.LLVMSetModuleDataLayout(module, layout)
            lib.LLVMDisposeTargetData(layout)
        return machine, None

    def _count(self, module) -> tuple[int, list[str]]:
        """Instructions of every defined function; calls to llvm.dbg.* are not instructions."""
        lib = self.lib
        total = 0
        defined = []
        length = ctypes.c_size_t()
        function = lib.LLVMGetFirstFunction(module)
        while function:
            if not lib.LLVMIsDeclaration(function):
                name = lib.LLVMGetValueName2(function, ctypes.byref(length))
                defined.append(ctypes.string_at(name, length.value).decode(errors="replace"))
                block = lib.LLVMGetFirstBasicBlock(function)
                while block:
                    instruction = lib.LLVMGetFirstInstruction(block)
                    while instruction:
                        if lib.LLVMGetInstructionOpcode(instruction) != _CALL_OPCODE or not self._is_debug_call(instruction, length):
                            total += 1
                        instruction = lib.LLVMGetNextInstruction(instruction)
                    block = lib.LLVMGetNextBasicBlock(block)
            function = lib.LLVMGetNextFunction(function)
        return total, defined

    def _is_debug_call(self, instruction, length) -> bool:
        callee = self.lib.LLVMGetCalledValue(instruction)
        if not callee:
            return False
        name = self.lib.LLVMGetValueName2(callee, ctypes.byref(length))
        return bool(name) and ctypes.string_at(name, min(length.value, 9)) == b"llvm.dbg."


def _inject_fault(module: bytes, memory_mb: int) -> dict | None:
    """Test-only: see FAULTS_VARIABLE. Returns the reply to send instead of running, if any."""
    start = module.find(FAULT_MARKER)
    if start < 0:
        return None
    kind = module[start + len(FAULT_MARKER) :].split(b"\n", 1)[0].strip()
    if kind == b"abort":
        os.write(2, b"LLVM ERROR: injected fatal error (test)\n")
        os.abort()
    elif kind == b"segv":
        ctypes.string_at(0)
    elif kind == b"hang":
        while True:
            pass
    elif kind == b"oom":
        hoard = []
        for _ in range(2 * memory_mb // 64):  # MemoryError at the worker's RLIMIT_AS, long before this ends
            hoard.append(bytearray(64 * 1024 * 1024))
    elif kind == b"garbage":
        return {"count": 1, "defined": [], "output": "this is not LLVM IR\n"}
    return None


def _limit_memory(memory_mb: int) -> None:
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass


def serve_one(llvm: LLVM, requests: int, replies: int, memory_mb: int, faults: bool) -> int:
    """Read one request and answer it; the exit status that says how it ended (0: answered)."""
    request = read_message(requests)
    if request is None:
        return EXIT_END_OF_INPUT
    started = time.perf_counter()
    try:
        module = request["module"].encode()
        injected = _inject_fault(module, memory_mb) if faults else None
        reply = injected or llvm.run(module, request["passes"], bool(request.get("print")))
    except MemoryError:
        raise  # the worker's memory limit: the caller ends the process with EXIT_OUT_OF_MEMORY
    except Exception as error:  # noqa: BLE001 - a bug here is one failed candidate, not a dead worker
        reply = {"error": f"libLLVM worker error: {type(error).__name__}: {error}"}
    reply["seconds"] = time.perf_counter() - started
    data = encode_message(reply)
    while data:
        data = data[os.write(replies, data) :]
    return 0


def serve_here(serve) -> int:
    try:
        return serve()
    except MemoryError:
        os.write(2, b"out of memory\n")
        return EXIT_OUT_OF_MEMORY


def serve_in_child(serve) -> int:
    """Serve one request in a forked child; end this process as the child ended if it did not answer."""
    child = os.fork()
    if child == 0:
        status = 1
        try:
            status = serve_here(serve)
        finally:
            os._exit(status)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    library, memory_mb, fresh = argv[1], int(argv[2]), "--fresh" in argv[3:]
    requests = os.dup(0)
    replies = os.dup(1)
    os.dup2(2, 1)  # whatever LLVM prints on stdout goes to stderr, never into the protocol
    _limit_memory(memory_mb)
    faults = os.environ.get(FAULTS_VARIABLE) == "1"
    try:
        llvm = LLVM(library)
    except (OSError, AttributeError) as error:
        os.write(replies, encode_message({"error": f"cannot load {library}: {error}"}))
        return 1
    os.write(replies, encode_message({"version": llvm.version, "targets": llvm.targets}))
    serve = functools.partial(serve_one, llvm, requests, replies, memory_mb, faults)
    while True:
        status = serve_in_child(serve) if fresh else serve_here(serve)
        if status == EXIT_END_OF_INPUT:
            return 0
        if status:
            os._exit(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
