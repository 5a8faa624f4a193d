"""The libllvm backend: a pool of persistent worker processes that run pass lists through libLLVM.

A worker (llvm_worker.py) loads, through ctypes, the libLLVM of the same LLVM version as the chosen
`opt`, and answers one request at a time over pipes. Nothing of LLVM runs in this process: llvmlite's
statically linked LLVM lives here. A worker that aborts, crashes, hangs past the time limit, runs out
of its memory limit or runs a cancelled candidate is killed and reaped; its candidate fails with the
reason, and the next candidate gets a fresh worker.

Candidates are measured by reusing workers, each running one request after another. Two kinds of request
go to a fresh worker instead, which forks a clean copy of itself for each: a printed module (the text that
may be written back), and a list with a pass whose result depends on the allocator's history in the
process (`ADDRESS_ORDERED_PASSES`). A fresh run gives one answer for those, every time; usually the
one `opt -passes=…` gives (see llvm_worker.py).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

from .backend import BackendUnavailable, CompileResult, identify, printed_module_problem
from .llvm_worker import EXIT_OUT_OF_MEMORY, HEADER, encode_message
from .locate import OptTool
from .passes import pipeline_pass_names
from .runner import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("llvm_worker.py")
START_TIMEOUT_S = 30.0
POLL_S = 0.05
PROBE_MODULE = "define i32 @probe(i32 %x) {\n  %y = add i32 %x, 0\n  ret i32 %y\n}\n"
_LLVM_ENV = {"LLVM_DISABLE_CRASH_REPORT": "1", "LLVM_DISABLE_SYMBOLIZATION": "1"}
# Passes that choose by the addresses of LLVM's objects: after other runs in one process they can give
# another result for the same input (gvn-sink sorts candidates by pointer). Lists with them run fresh.
ADDRESS_ORDERED_PASSES = frozenset({"gvn-sink"})
_OUT_OF_MEMORY_SIGNS = ("out of memory", "bad_alloc", "Allocation failed", "Cannot allocate memory")


def libllvm_candidates(opt: OptTool) -> list[Path]:
    """Where the libLLVM of `opt`'s version may be, most specific first.

    Next to the real `opt` (`/usr/lib/llvm-22/bin/opt` -> `/usr/lib/llvm-22/lib`, also what
    `llvm-config --libdir` says), then the system library folders where Debian's libllvm22 puts it.
    Unversioned names are taken only next to `opt`.
    """
    major, minor = (opt.version.split(".") + ["0"])[:2]
    versioned = [f"libLLVM.so.{major}.{minor}", f"libLLVM-{major}.so", f"libLLVM.so.{major}", f"libLLVM-{major}.{minor}.so"]
    prefix = Path(opt.path).resolve().parent.parent
    own = [prefix / "lib" / name for name in [*versioned, "libLLVM.so", "libLLVM.dylib"]]
    system_dirs = [Path("/usr/lib") / str(sysconfig.get_config_var("MULTIARCH") or ""), Path("/usr/lib64"), Path("/usr/lib"), Path("/usr/local/lib")]
    system = [directory / name for directory in dict.fromkeys(system_dirs) for name in versioned]
    return [*own, *system]


def find_libllvm(opt: OptTool) -> Path | None:
    return next((path for path in libllvm_candidates(opt) if path.is_file()), None)


class _WorkerGone(Exception):
    """The worker cannot answer: `reason` says why; `transient` when it says nothing about the candidate."""

    def __init__(self, reason: str, transient: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class _Worker:
    """One worker process and its pipes. Its stderr goes to a file that holds the current request's messages."""

    def __init__(self, library: Path, memory_mb: int, fresh: bool):
        self.stderr = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(WORKER_SCRIPT), str(library), str(memory_mb), *(["--fresh"] if fresh else [])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                env={**os.environ, **_LLVM_ENV},
                bufsize=0,
                start_new_session=True,  # a Ctrl-C in the terminal reaches PassPilot, which stops the workers
            )
        except OSError as error:
            self.stderr.close()
            raise _WorkerGone(f"could not start a libLLVM worker: {error}", transient=True) from None
        self._input = self.process.stdin.fileno()
        self._output = self.process.stdout.fileno()
        self._buffer = b""
        self.hello: dict = {}

    def start(self, cancel: threading.Event | None = None) -> dict:
        self.hello = self._receive(time.monotonic() + START_TIMEOUT_S, cancel, starting=True)
        if "error" in self.hello:
            raise _WorkerGone(self.hello["error"])
        return self.hello

    def request(self, message: dict, timeout: float, cancel: threading.Event | None) -> dict:
        self.stderr.seek(0)
        self.stderr.truncate()
        deadline = time.monotonic() + timeout
        self._send(encode_message(message), deadline, cancel, timeout)
        return self._receive(deadline, cancel, timeout=timeout)

    def _send(self, data: bytes, deadline: float, cancel: threading.Event | None, timeout: float) -> None:
        view = memoryview(data)
        poller = select.poll()
        poller.register(self._input, select.POLLOUT)
        while view:
            self._check(deadline, cancel, timeout)
            if not poller.poll(POLL_S * 1000):
                continue
            try:
                written = os.write(self._input, view[: 1 << 16])
            except (BrokenPipeError, OSError):
                raise _WorkerGone(self._death()) from None
            view = view[written:]

    def _receive(self, deadline: float, cancel: threading.Event | None, *, timeout: float = START_TIMEOUT_S, starting: bool = False) -> dict:
        poller = select.poll()
        poller.register(self._output, select.POLLIN)
        while True:
            if len(self._buffer) >= HEADER.size:
                (length,) = HEADER.unpack_from(self._buffer)
                if len(self._buffer) >= HEADER.size + length:
                    data = self._buffer[HEADER.size : HEADER.size + length]
                    self._buffer = self._buffer[HEADER.size + length :]
                    try:
                        return json.loads(data)
                    except ValueError:
                        self.kill()
                        raise _WorkerGone("the libLLVM worker sent an unreadable reply") from None
            self._check(deadline, cancel, timeout, starting)
            if not poller.poll(POLL_S * 1000):
                continue
            try:
                chunk = os.read(self._output, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                raise _WorkerGone(self._death(starting))
            self._buffer += chunk

    def _check(self, deadline: float, cancel: threading.Event | None, timeout: float, starting: bool = False) -> None:
        if cancel is not None and cancel.is_set():
            self.kill()
            raise _WorkerGone("cancelled", transient=True)
        if time.monotonic() >= deadline:
            self.kill()
            what = "starting a libLLVM worker" if starting else "LLVM"
            raise _WorkerGone(f"{what} timed out after {timeout:g} s", transient=True)

    def _death(self, starting: bool = False) -> str:
        """Why the worker stopped answering, from its exit status and what it printed."""
        try:
            returncode = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            returncode = self.process.returncode
        printed = self._stderr_tail()
        lines = [line.strip() for line in printed.splitlines() if line.strip()]
        detail = next((line for line in lines if line.startswith("LLVM ERROR")), lines[-1] if lines else "")
        if returncode == EXIT_OUT_OF_MEMORY or any(sign in printed for sign in _OUT_OF_MEMORY_SIGNS):
            reason = "out of memory"
        elif returncode == 1 and detail.startswith("LLVM ERROR"):
            reason = "LLVM fatal error"  # report_fatal_error without a crash report exits with status 1
            detail = detail.removeprefix("LLVM ERROR:").strip()
        elif returncode is not None and returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
            reason = "LLVM aborted (SIGABRT)" if name == "SIGABRT" else f"LLVM crashed ({name})"
        else:
            reason = f"the libLLVM worker exited with status {returncode}"
        if starting:
            reason = f"the libLLVM worker did not start ({reason})"
        return f"{reason}: {detail[:300]}" if detail and reason != "out of memory" else reason

    def _stderr_tail(self) -> str:
        try:
            size = self.stderr.seek(0, os.SEEK_END)
            self.stderr.seek(max(0, size - 8192))
            return self.stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_kill(self) -> None:
        """SIGKILL to the worker and the child running its request (its own process group, as it was
        started in a new session). Safe from any thread: the pipes stay open for the thread that owns it."""
        try:
            if self.process.returncode is None:
                os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.process.kill()
        except OSError:
            pass

    def kill(self) -> None:
        self.signal_kill()
        self._reap()

    def stop(self) -> None:
        """Close its input (an idle worker exits at end of input); kill it if it does not."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap()

    def _reap(self) -> None:
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("libLLVM worker %d did not exit after SIGKILL", self.process.pid)
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass


class LibLLVMBackend:
    """Up to `workers` reusing worker processes, and as many fresh ones (printed modules, lists with an
    address-ordered pass), each started when first needed; a request takes an idle one of its kind, or
    waits for one."""

    def __init__(self, library: Path, version: str, *, workers: int, memory_mb: int = DEFAULT_MEMORY_MB):
        self.library = library
        self.memory_mb = memory_mb
        self.workers = max(1, workers)
        self.identity = identify("libllvm", str(library), version)
        # idle workers, reusing (False) and fresh (True); None: start one when used
        self._slots: dict[bool, queue.Queue[_Worker | None]] = {False: queue.Queue(), True: queue.Queue()}
        for slots in self._slots.values():
            for _ in range(self.workers):
                slots.put(None)
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def start(cls, opt: OptTool, *, workers: int, memory_mb: int = DEFAULT_MEMORY_MB) -> LibLLVMBackend:
        """Find the library of `opt`'s version, start one worker and run a tiny module; else BackendUnavailable."""
        library = find_libllvm(opt)
        if library is None:
            raise BackendUnavailable(f"no libLLVM {opt.version} was found (e.g. {libllvm_candidates(opt)[0]})")
        backend = cls(library, opt.version, workers=workers, memory_mb=memory_mb)
        try:
            worker = backend._start_worker(None, fresh=False)
        except _WorkerGone as gone:
            backend.close()
            raise BackendUnavailable(f"{library} did not load: {gone.reason}") from None
        backend._slots[False].get()
        backend._slots[False].put(worker)  # idle in the pool: close() stops and reaps it
        version = worker.hello.get("version")
        if version != opt.version:
            backend.close()
            raise BackendUnavailable(f"{library} is LLVM {version}, but opt ({opt.path}) is {opt.version}")
        probe = backend.run(PROBE_MODULE, "instcombine", timeout=START_TIMEOUT_S)
        if probe.count != 1:
            backend.close()
            raise BackendUnavailable(f"{library} failed a test run ({probe.error or f'{probe.count} instructions, expected 1'})")
        return backend

    def run(
        self,
        module_text: str,
        checked_passes: str,
        *,
        want_output: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
        cancel: threading.Event | None = None,
    ) -> CompileResult:
        started = time.monotonic()
        fresh = want_output or not ADDRESS_ORDERED_PASSES.isdisjoint(pipeline_pass_names(checked_passes))
        taken, worker = self._take(cancel, fresh)
        if not taken:
            return CompileResult(None, "the compiler backend was closed" if self._closed else "cancelled", 0.0, transient=True)
        try:
            if worker is None or not worker.alive:
                if worker is not None:
                    self._discard(worker)
                worker = self._start_worker(cancel, fresh)
            started = time.monotonic()
            reply = worker.request({"module": module_text, "passes": checked_passes, "print": want_output}, timeout, cancel)
        except _WorkerGone as gone:
            if worker is not None:
                self._discard(worker)
            worker = None
            transient = gone.transient or self._closed or "SIGKILL" in gone.reason
            reason = "the compiler backend was closed" if self._closed else gone.reason
            return CompileResult(None, reason, time.monotonic() - started, transient=transient)
        finally:
            self._give_back(worker, fresh)
        seconds = time.monotonic() - started
        if reply.get("count") is None:
            return CompileResult(None, reply.get("error") or "libLLVM gave no result", seconds)
        count, output = int(reply["count"]), reply.get("output")
        if output is not None:  # text that will be written back: PassPilot parses, verifies and counts it too
            problem = printed_module_problem(output, count)
            if problem:
                return CompileResult(None, f"libLLVM {problem}", seconds)
        return CompileResult(count, None, seconds, output, frozenset(reply.get("defined") or ()))

    def close(self) -> None:
        """Stop every worker. Idle ones are stopped and reaped here; busy ones get SIGKILL, and the thread
        that runs them reaps them (only that thread touches their pipes) and fails its candidate as transient."""
        with self._lock:
            self._closed = True
            idle = []
            for slots in self._slots.values():
                while True:
                    try:
                        idle.append(slots.get_nowait())
                    except queue.Empty:
                        break
            idle = [worker for worker in idle if worker is not None]
            busy = [worker for worker in self._live if worker not in idle]
            self._live.clear()
        for worker in idle:
            worker.stop()
        for worker in busy:
            worker.signal_kill()

    def _give_back(self, worker: _Worker | None, fresh: bool) -> None:
        with self._lock:
            if not self._closed:
                self._slots[fresh].put(worker)
                return
        if worker is not None:
            self._discard(worker)

    def pids(self) -> list[int]:
        """Process ids of the running workers (for tests and diagnostics)."""
        with self._lock:
            return [worker.process.pid for worker in self._live if worker.alive]

    def _take(self, cancel: threading.Event | None, fresh: bool) -> tuple[bool, _Worker | None]:
        """An idle worker (None: none started yet in that place), or (False, None) when cancelled or closed."""
        while not self._closed:
            if cancel is not None and cancel.is_set():
                return False, None
            try:
                return True, self._slots[fresh].get(timeout=POLL_S)
            except queue.Empty:
                continue
        return False, None

    def _start_worker(self, cancel: threading.Event | None, fresh: bool) -> _Worker:
        if self._closed:
            raise _WorkerGone("the compiler backend was closed", transient=True)
        worker = _Worker(self.library, self.memory_mb, fresh)
        with self._lock:
            self._live.add(worker)
        try:
            worker.start(cancel)
        except _WorkerGone:
            self._discard(worker)
            raise
        if self._closed:  # closed while it started
            self._discard(worker)
            raise _WorkerGone("the compiler backend was closed", transient=True)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._live.discard(worker)
