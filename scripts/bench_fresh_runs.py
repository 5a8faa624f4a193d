#!/usr/bin/env python3
"""What a fresh run costs: one pass list on benchmark functions, run by a reused libLLVM worker and by
forked children of one, as the two kinds of worker run them (lsp_server/compiler/llvm_worker.py).

    python scripts/bench_fresh_runs.py [--functions 60] [--passes 'default<Oz>'] [--folder data/benchmark/zlib]

Prints milliseconds per run for both, and the minor page faults per forked child: a child's first
write to each page faults, which is most of the difference on a machine where faults are slow.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "lsp_server" / "compiler" / "llvm_worker.py"
# libLLVM runs in this process, as in a worker; PassPilot's package imports llvmlite, whose own LLVM must
# never share a process with libLLVM. So the worker module is loaded by path, and the library is found
# by PassPilot in a child process.
FIND_LIBRARY = "from lsp_server.compiler import find_opt; from lsp_server.compiler.libllvm import find_libllvm; print(find_libllvm(find_opt()) or '')"


def load_worker_module():
    spec = importlib.util.spec_from_file_location("llvm_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", type=int, default=60)
    parser.add_argument("--passes", default="default<Oz>")
    parser.add_argument("--folder", type=Path, default=ROOT / "data" / "benchmark" / "zlib")
    args = parser.parse_args()
    library = subprocess.run([sys.executable, "-c", FIND_LIBRARY], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    if not library:
        sys.exit("no libLLVM of opt's version here")
    llvm = load_worker_module().LLVM(library)
    modules = [path.read_bytes() for path in sorted(args.folder.glob("*.ll"))[: args.functions]]
    if not modules:
        sys.exit(f"no .ll files in {args.folder}")
    for module in modules[:5]:
        llvm.run(module, args.passes, False)  # warm: what a reused worker has done before

    started = time.perf_counter()
    for module in modules:
        llvm.run(module, args.passes, False)
    reused = (time.perf_counter() - started) / len(modules)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    for module in modules:
        child = os.fork()
        if child == 0:
            llvm.run(module, args.passes, False)
            os._exit(0)
        os.waitpid(child, 0)
    forked = (time.perf_counter() - started) / len(modules)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    faults = (after.ru_minflt - before.ru_minflt) / len(modules)
    print(f"{len(modules)} functions of {args.folder}, -passes={args.passes}, libLLVM {library}")
    print(f"reused worker: {1000 * reused:.2f} ms per run")
    print(f"forked child:  {1000 * forked:.2f} ms per run (fork, run, exit, wait), {faults:.0f} minor page faults per child")
    return 0


if __name__ == "__main__":
    sys.exit(main())
