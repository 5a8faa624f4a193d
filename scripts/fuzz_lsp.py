#!/usr/bin/env python3
"""The long run of the language server's edit-session fuzzer (tests/lsp/fuzz_sessions.py).

    .venv/bin/python scripts/fuzz_lsp.py --sessions 500 [--steps 40] [--seed 0] [--per-server 25]
        [--jobs 1] [--model none] [--budget 1] [--benchmark-modules 40]

Starts the real server (`python -m lsp_server`) over stdio, `--per-server` sessions per server (a fresh
server after that, or after a crash), alternating the VS Code (UTF-16) and Neovim (UTF-8) client
profiles, on the examples, the test fixture and up to `--benchmark-modules` modules of the public
benchmark (`data/benchmark`, when built). Session N uses seed `--seed` + N: a failing session replays with
`--seed N --sessions 1`. Prints one line per server, then the totals: sessions, edits, requests, crashes,
hangs, tracebacks, internal errors, text mismatches; and each failure. Exit status 1 when any was found.
Needs the `test` extra (pytest-lsp) and LLVM's opt.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROFILES = ("visual-studio-code", "neovim")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--steps", type=int, default=40, help="edits and requests per session")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first session")
    parser.add_argument("--per-server", type=int, default=25, help="sessions per server process")
    parser.add_argument("--jobs", type=int, default=1, help="servers at once")
    parser.add_argument("--model", default="none", help="model.path setting (default: none, no model)")
    parser.add_argument("--budget", type=int, default=1, help="search budget setting")
    parser.add_argument("--benchmark-modules", type=int, default=40, help="public benchmark modules to start from")
    parser.add_argument("--request-timeout", type=float, default=30.0, help="seconds an answer may take")
    return parser.parse_args(argv)


async def campaign(args: argparse.Namespace) -> int:
    if shutil.which("opt-22") is None and shutil.which("opt") is None:
        print("fuzz_lsp: LLVM's opt is not installed", file=sys.stderr)
        return 2
    from tests.lsp.fuzz_sessions import Limits, Tally, corpus, run_server

    modules = corpus(limit_benchmark=args.benchmark_modules)
    limits = Limits(request_s=args.request_timeout, measured_s=max(120.0, 4 * args.request_timeout))
    seeds = list(range(args.seed, args.seed + args.sessions))
    batches = [seeds[i : i + args.per_server] for i in range(0, len(seeds), args.per_server)]
    print(f"fuzz_lsp: {args.sessions} sessions of {args.steps} steps on {len(modules)} modules, "
          f"{len(batches)} servers ({args.jobs} at once), model {args.model}, budget {args.budget}", flush=True)
    total = Tally()
    started = time.monotonic()
    queue: asyncio.Queue[tuple[int, list[int]]] = asyncio.Queue()
    for number, batch in enumerate(batches):
        queue.put_nowait((number, batch))

    with tempfile.TemporaryDirectory(prefix="passpilot-fuzz-") as scratch:

        async def worker() -> None:
            while not queue.empty():
                number, batch = queue.get_nowait()
                done: list[int] = []
                while len(done) < len(batch):  # a crash ends a server: the rest of its batch gets a new one
                    left = batch[len(done) :]
                    batch_started = time.monotonic()
                    tally = await run_server(
                        left, modules, steps=args.steps, cache_dir=Path(scratch) / "cache", limits=limits,
                        profile=PROFILES[number % 2], budget=args.budget, model=args.model,
                    )
                    done += left[: max(tally.sessions, 1)]
                    total.add(tally)
                    print(f"server {number + 1}/{len(batches)} ({PROFILES[number % 2]}, seeds {left[0]}-{left[-1]}, "
                          f"{time.monotonic() - batch_started:.0f} s): {tally.summary()}", flush=True)

        await asyncio.gather(*(worker() for _ in range(max(1, args.jobs))))

    print(f"\ntotal ({time.monotonic() - started:.0f} s): {total.summary()}")
    for failure in total.failures:
        print(f"\n{failure}")
    return 1 if total.defects or total.failures else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(campaign(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
