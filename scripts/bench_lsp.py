#!/usr/bin/env python3
"""Latency of the PassPilot language server, measured as a client sees it.

    python scripts/bench_lsp.py MODULE.ll [--runs 2] [--load idle,busy] [--json OUT] [--model PATH|none] [--budget N]

Starts the real server (`python -m lsp_server`) over stdio, with the server's default settings unless
told otherwise (the shipped model, budget 10, backend auto), and prints, per run:
  didOpen -> diagnostics, didOpen -> first verified hint and all hints of the visible functions (those
  whose `define` line is in the N lines from the first `define`), and after edits: edit -> diagnostics (a broken
  edit, and the fix), edit -> the edited function's hint again (only that function is re-measured).
Run 1 starts with an empty result cache (cold); later runs reuse it (warm), as a reopened editor would.
Times include the server's 0.3 s debounce of edits.

`--load idle,busy` repeats the runs (each condition with a cache of its own) with nothing of ours beside
the server, then with one CPU-bound process per core beside it (scripts/cpu_load.py), and prints the
figures side by side. `--json` writes every figure and the visible functions' hints (function, label)
of every run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsp_server.ir import ModuleLayout  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from cpu_load import busy_cores  # noqa: E402

CAPABILITIES = types.ClientCapabilities(
    general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
    window=types.WindowClientCapabilities(work_done_progress=True),
    workspace=types.WorkspaceClientCapabilities(
        configuration=False,
        apply_edit=True,
        inlay_hint=types.InlayHintWorkspaceClientCapabilities(refresh_support=True),
    ),
    text_document=types.TextDocumentClientCapabilities(
        inlay_hint=types.InlayHintClientCapabilities(),
        hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown]),
        publish_diagnostics=types.PublishDiagnosticsClientCapabilities(version_support=True),
    ),
)


class Bench:
    def __init__(self, client: LanguageClient, uri: str):
        self.client = client
        self.uri = uri
        self.diagnostics: dict[int | None, tuple[float, int]] = {}
        self.refreshes = 0
        self.engine_ready: float | None = None  # the first idle status with an `opt`: the engine is assembled

    def install(self) -> None:
        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: types.PublishDiagnosticsParams) -> None:
            if params.uri == self.uri:
                self.diagnostics.setdefault(params.version, (time.perf_counter(), len(params.diagnostics)))

        @self.client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
        def refresh(params) -> None:
            self.refreshes += 1

        @self.client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def progress_create(params) -> None:
            return None

        @self.client.feature(types.PROGRESS)
        def progress(params) -> None:
            return None

        @self.client.feature("passpilot/status")
        def status(params) -> None:
            opt = getattr(params, "opt", None) if not isinstance(params, dict) else params.get("opt")
            busy = getattr(params, "busy", None) if not isinstance(params, dict) else params.get("busy")
            if opt and not busy and self.engine_ready is None:
                self.engine_ready = time.perf_counter()

        @self.client.feature(types.WINDOW_SHOW_MESSAGE)
        def message(params: types.ShowMessageParams) -> None:
            print(f"  server says: {params.message}", file=sys.stderr)

    async def wait_diagnostics(self, version: int, timeout: float) -> tuple[float, int]:
        deadline = time.perf_counter() + timeout
        while version not in self.diagnostics:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no diagnostics for version {version} after {timeout:g} s")
            await asyncio.sleep(0.005)
        return self.diagnostics[version]

    async def hints(self, window: tuple[int, int]) -> list[types.InlayHint]:
        first, last = window
        return await self.client.text_document_inlay_hint_async(
            types.InlayHintParams(
                text_document=types.TextDocumentIdentifier(uri=self.uri),
                range=types.Range(start=types.Position(line=first, character=0), end=types.Position(line=last, character=0)),
            )
        ) or []

    async def wait_hints(self, window: tuple[int, int], predicate, timeout: float) -> float:
        deadline = time.perf_counter() + timeout
        while True:
            hints = await self.hints(window)
            if predicate(hints):
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"hints not there after {timeout:g} s: {len(hints)}")
            await asyncio.sleep(0.02)


async def run_once(args, text: str, cache_dir: str, label: str) -> tuple[dict[str, float], list[dict]]:
    layout = ModuleLayout.from_text(text)
    window = visible_window(layout, args)
    visible = [s for s in layout.functions if window[0] <= s.header_end_line < window[1]]
    client = LanguageClient("passpilot-bench", "1")
    uri = Path(args.module).resolve().as_uri()
    bench = Bench(client, uri)
    bench.install()
    await client.start_io(sys.executable, "-m", "lsp_server")
    options: dict = {"cache": {"dir": cache_dir}}
    if args.budget is not None:
        options["budget"] = args.budget
    if args.model:
        options["model"] = {"path": args.model}
    if args.opt:
        options["opt"] = {"path": args.opt}
    started = time.perf_counter()
    await client.initialize_async(
        types.InitializeParams(capabilities=CAPABILITIES, initialization_options=options, process_id=None)
    )
    client.initialized(types.InitializedParams())
    figures: dict[str, float] = {}
    # The figures below are about documents, not start-up: wait for the engine (its time is reported too).
    deadline = time.perf_counter() + 120
    while bench.engine_ready is None and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    if bench.engine_ready is None:
        raise TimeoutError("the server reported no ready engine within 120 s")
    figures["initialize -> engine ready"] = bench.engine_ready - started
    await asyncio.sleep(0.2)
    rows: list[dict] = []
    try:
        opened = time.perf_counter()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(uri=uri, language_id="llvm", version=1, text=text))
        )
        done, errors = await bench.wait_diagnostics(1, 120)
        figures["didOpen -> diagnostics"] = done - opened
        if errors:
            print(f"  note: the module has {errors} diagnostics", file=sys.stderr)
        first_hint = await bench.wait_hints(window, lambda hints: len(hints) >= 1, args.timeout)
        figures["didOpen -> first visible hint"] = first_hint - opened
        all_hints = await bench.wait_hints(window, lambda hints: len(hints) >= len(visible), args.timeout)
        figures[f"didOpen -> all {len(visible)} visible hints"] = all_hints - opened
        names = {s.header_end_line: s.name for s in visible}
        rows = [{"function": names.get(h.position.line), "line": h.position.line + 1, "hint": h.label} for h in await bench.hints(window)]

        # An edit that breaks the first function, then its fix.
        target = visible[0]
        original_count = await original_of(bench, target.header_end_line, window)
        lines = text.split("\n")
        body = next(n for n in range(target.header_end_line + 1, target.end_line) if lines[n].strip() and not lines[n].endswith(":"))
        broken = lines[:body] + ["  %passpilot.bench = add i32 %undefined.value, 1"] + lines[body:]
        edited = time.perf_counter()
        change(client, uri, 2, "\n".join(broken))
        done, errors = await bench.wait_diagnostics(2, 60)
        figures["edit -> diagnostics (error)"] = done - edited
        assert errors, "the broken edit produced no diagnostic"
        # The fix is a real change of the function (one more, dead, instruction), so it is re-measured.
        fixed = lines[:body] + ["  %passpilot.bench = add i32 0, 1"] + lines[body:]
        edited = time.perf_counter()
        change(client, uri, 3, "\n".join(fixed))
        done, errors = await bench.wait_diagnostics(3, 60)
        figures["edit -> diagnostics (fixed)"] = done - edited

        def edited_hint(hints: list[types.InlayHint]) -> bool:
            return any(
                h.position.line == target.header_end_line and h.label.split(" ")[0] == str(original_count + 1) for h in hints
            )

        new_hint = await bench.wait_hints((window[0], window[1] + 1), edited_hint, args.timeout)
        figures["edit -> hint of the edited function"] = new_hint - edited
    finally:
        try:
            await asyncio.wait_for(client.shutdown_async(None), 10)
            client.exit(None)
        except Exception:  # noqa: BLE001
            pass
        await client.stop()
    print(f"{label}:")
    for name, seconds in figures.items():
        print(f"  {name:<40} {seconds:7.3f} s")
    for row in rows:
        print(f"    @{row['function']}: {row['hint']}")
    return figures, rows


async def original_of(bench: Bench, header_line: int, window: tuple[int, int]) -> int | None:
    for hint in await bench.hints(window):
        if hint.position.line == header_line:
            return int(hint.label.split(" ")[0])
    return None


def visible_window(layout: ModuleLayout, args) -> tuple[int, int]:
    """The lines an editor shows: `--visible-lines` lines from the first `define` (or `--first-line`)."""
    first = args.first_line if args.first_line is not None else (layout.functions[0].start_line if layout.functions else 0)
    window = (first, first + args.visible_lines)
    if not any(window[0] <= s.header_end_line < window[1] for s in layout.functions):
        raise SystemExit(f"no function starts in lines {window[0] + 1}-{window[1]}")
    return window


def change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module", type=Path)
    parser.add_argument("--budget", type=int, default=None, help="passpilot.budget (default: the server's)")
    parser.add_argument("--visible-lines", type=int, default=60, help="lines a client shows (default 60)")
    parser.add_argument("--first-line", type=int, default=None, help="0-based first visible line (default: the first define)")
    parser.add_argument("--runs", type=int, default=2, help="run 1 is cold, later runs reuse its cache (default 2)")
    parser.add_argument("--opt", default="", help="passpilot.opt.path")
    parser.add_argument("--model", default="", help='passpilot.model.path (default: the server\'s, the shipped model; "none": no model)')
    parser.add_argument("--load", default="idle", help="conditions, comma-separated: idle, busy (one CPU-bound process per core)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for hints")
    parser.add_argument("--json", type=Path, help="write the figures and hints of every run here")
    args = parser.parse_args()
    conditions = [c.strip() for c in args.load.split(",") if c.strip()]
    if not conditions or any(c not in ("idle", "busy") for c in conditions):
        parser.error("--load takes idle and/or busy")
    text = args.module.read_text()
    layout = ModuleLayout.from_text(text)
    window = visible_window(layout, args)
    visible = sum(1 for s in layout.functions if window[0] <= s.header_end_line < window[1])
    print(
        f"{args.module}: {len(layout.lines)} lines, {len(layout.functions)} functions; visible: lines "
        f"{window[0] + 1}-{window[1]} ({visible} functions); budget {args.budget if args.budget is not None else 'server default'}, "
        f"model {args.model or 'server default (shipped model)'}; {os.cpu_count()} cores, load average before {os.getloadavg()[0]:.2f}"
    )
    report: dict = {"module": str(args.module), "lines": len(layout.lines), "functions": len(layout.functions),
                    "visible_functions": visible, "budget": args.budget, "model": args.model or "default", "conditions": {}}
    for condition in conditions:
        runs = []
        with tempfile.TemporaryDirectory(prefix="passpilot-bench-cache-") as cache_dir:
            with busy_cores() if condition == "busy" else contextlib.nullcontext():
                for run in range(args.runs):
                    label = f"{condition}, run 1 (cold cache)" if run == 0 else f"{condition}, run {run + 1} (warm cache)"
                    figures, rows = asyncio.run(run_once(args, text, cache_dir, label))
                    runs.append({"label": label, "figures": figures, "hints": rows, "load_average": os.getloadavg()[0]})
        report["conditions"][condition] = runs
    if len(conditions) > 1 or args.runs > 1:
        labels = [run["label"] for c in conditions for run in report["conditions"][c]]
        keys = list(report["conditions"][conditions[0]][0]["figures"])
        print("\nseconds".ljust(42) + "".join(f"{label.replace(' cache)', ')'):>26}" for label in labels))
        for key in keys:
            cells = [run["figures"].get(key) for c in conditions for run in report["conditions"][c]]
            print(f"{key:<41}" + "".join(f"{cell:>26.3f}" if cell is not None else f"{'-':>26}" for cell in cells))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
