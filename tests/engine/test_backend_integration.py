"""The optimizer on either backend: the same results, the winner's module printed only where needed,
workers stopped on close, results cached per compiler binary, and a final verify that honours the timeout."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from lsp_server.cli import main
from lsp_server.compiler import BackendUnavailable, OptBackend, OptTool, load_vocabulary
from lsp_server.compiler.libllvm import LibLLVMBackend
from lsp_server.engine import (
    Candidate,
    Measurement,
    CoresetSource,
    Optimizer,
    RandomSearchSource,
    ResultCache,
    optimize_module,
    standalone_functions,
    write_back,
)

LISTS = ["sroa,early-cse,instcombine,simplifycfg,gvn,instcombine,simplifycfg,adce", "default<Oz>,default<Oz>", "mem2reg,instcombine"]


def _wrapper(tmp_path: Path, opt_tool, body: str | None = None) -> OptTool:
    """Another file that behaves as (or, with `body`, unlike) the real opt and reports the same version."""
    path = tmp_path / "opt-wrapper"
    path.write_text("#!/bin/sh\n" + (body or f'exec {opt_tool.path} "$@"') + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return OptTool(str(path), opt_tool.version)


def _engine(opt_tool, backend, **options) -> Optimizer:
    vocabulary = load_vocabulary(opt_tool)
    sources = [CoresetSource(LISTS), RandomSearchSource(vocabulary.names)]
    return Optimizer(opt_tool, sources=sources, vocabulary=vocabulary, jobs=2, backend=backend, **options)


@pytest.fixture
def libllvm_backend(opt_tool):
    try:
        backend = LibLLVMBackend.start(opt_tool, workers=2)
    except BackendUnavailable as unavailable:
        pytest.skip(f"needs the libLLVM of opt {opt_tool.version}: {unavailable.reason}")
    yield backend
    backend.close()


def test_both_backends_choose_the_same_and_print_only_what_is_needed(opt_tool, libllvm_backend, example_text):
    functions = standalone_functions(example_text)[1]
    by_opt, by_library = _engine(opt_tool, OptBackend(opt_tool)), _engine(opt_tool, libllvm_backend)
    try:
        reference = by_opt.optimize_all(functions, budget=5, sources=["coreset", "search"])
        results = by_library.optimize_all(functions, budget=5, sources=["coreset", "search"])
    finally:
        by_opt.close()
        by_library.close()
    for mine, theirs in zip(results, reference):
        assert [(m.passes, m.count) for m in mine.measurements] == [(m.passes, m.count) for m in theirs.measurements]
        assert mine.best.passes == theirs.best.passes and mine.best.output == theirs.best.output
        assert mine.oz.output == theirs.oz.output is not None
        printed = [m for m in mine.measurements if m.output is not None]
        assert all(m is mine.oz or m is mine.best for m in printed)
    assert libllvm_backend.pids() == []  # closing the optimizer stopped the workers


def test_module_write_back_with_libllvm(opt_tool, libllvm_backend, example_text):
    engine = _engine(opt_tool, libllvm_backend)
    reference = _engine(opt_tool, OptBackend(opt_tool))
    try:
        module = optimize_module(engine, example_text, budget=3, sources=["coreset"])
        expected = optimize_module(reference, example_text, budget=3, sources=["coreset"])
    finally:
        engine.close()
        reference.close()
    assert all(outcome.verified for outcome in module.outcomes)
    assert module.text == expected.text != example_text


def test_results_are_cached_per_compiler_binary(tmp_path, opt_tool, example_text):
    """A wrapper that reports the same version is another binary: it never reuses the real opt's results."""
    function = standalone_functions(example_text, ["grade"])[1][0]
    candidate = Candidate(LISTS[0], "coreset")
    wrapper = _wrapper(tmp_path, opt_tool)
    assert OptBackend(wrapper).identity.fingerprint != OptBackend(opt_tool).identity.fingerprint

    def measure(tool: OptTool):
        engine = Optimizer(tool, vocabulary=load_vocabulary(opt_tool), cache=ResultCache(tmp_path / "cache"), jobs=1)
        try:
            return engine.measure(function, candidate)
        finally:
            engine.close()

    first, again, other = measure(opt_tool), measure(opt_tool), measure(wrapper)
    assert not first.cached and again.cached and again.count == first.count
    assert not other.cached and other.count == first.count


def test_libllvm_results_wait_for_printing_in_the_cache(tmp_path, opt_tool, libllvm_backend, example_text):
    """A count cached without its module is run again, printed, when the module is needed."""
    function = standalone_functions(example_text, ["grade"])[1][0]
    engine = Optimizer(opt_tool, cache=ResultCache(tmp_path / "cache"), jobs=1, backend=libllvm_backend)
    try:
        counted = engine.measure(function, Candidate(LISTS[0], "coreset"))
        printed = engine.measure(function, Candidate(LISTS[0], "coreset"), want_output=True)
        cached = engine.measure(function, Candidate(LISTS[0], "coreset"), want_output=True)
    finally:
        engine.close()
    assert counted.output is None and not printed.cached and printed.output and printed.count == counted.count
    assert cached.cached and cached.output == printed.output


def test_final_verify_honours_the_timeout(tmp_path, opt_tool, example_text):
    """The whole-module verify runs `optimizer.opt` with the optimizer's timeout (here an opt that hangs)."""
    functions = standalone_functions(example_text, ["grade"])[1]
    engine = _engine(opt_tool, OptBackend(opt_tool), timeout=1.0)
    try:
        results = engine.optimize_all(functions, budget=2, sources=["coreset"])
    finally:
        engine.close()
    engine.opt = _wrapper(tmp_path, opt_tool, "exec sleep 60")
    started = time.monotonic()
    module = write_back(engine, example_text, results)
    assert time.monotonic() - started < 10
    assert module.text == example_text
    [outcome] = module.outcomes
    assert not outcome.verified and "timed out after 1 s" in outcome.reason


@pytest.mark.parametrize("backend", ["opt", "libllvm"])
def test_cli_reports_the_backend_that_ran(backend, opt_tool, tmp_path, capsys):
    if backend == "libllvm":
        try:
            LibLLVMBackend.start(opt_tool, workers=1).close()
        except BackendUnavailable as unavailable:
            pytest.skip(f"needs the libLLVM of opt {opt_tool.version}: {unavailable.reason}")
    example = Path(__file__).resolve().parents[2] / "examples" / "example.ll"
    argv = ["optimize", str(example), "--function", "grade", "--json", "--budget", "2", "--sources", "coreset"]
    assert main([*argv, "--model", "none", "--no-cache", "--backend", backend]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"]["name"] == backend and report["backend"]["version"] == opt_tool.version
    assert ("path" if backend == "opt" else "library") in report["backend"]


# gvn-sink chooses what to sink partly by the addresses of LLVM's objects: in a process that has run other
# modules before, the same input can give another result. A switch of similar cases shows it.
GVN_SINK_LIST = "module(mem2reg,gvn-sink,early-cse<memssa>,simplifycfg,instcombine,simplifycfg,gvn-sink)"


def _similar_cases(cases: int) -> str:
    operators = "+^*-|"
    body = "\n".join(
        f"  case {i}: s->a = x {operators[i % 5]} {i % 9 + 1}; s->b = y + s->a; r = g(s->b {operators[i % 5]} x); s->d += r; break;"
        for i in range(cases)
    )
    return (
        "struct S { int a, b, c; long d; };\nint g(int);\n"
        f"int f(struct S *s, int k, int x, int y) {{\n  int r = 0;\n  switch (k) {{\n{body}\n  default: r = -1;\n  }}\n  return r + s->c;\n}}\n"
    )


def test_printed_modules_are_what_opt_prints_whatever_ran_before(opt_tool, libllvm_backend, compile_c, example_text):
    """Printed modules, and lists whose result depends on the process's history, run in a fresh worker: the
    module and the count are `opt`'s every time, between runs of other modules."""
    text = compile_c(_similar_cases(24))
    reference = OptBackend(opt_tool).run(text, GVN_SINK_LIST, want_output=True)
    assert reference.ok
    printed, counted = [], []
    for _ in range(6):
        libllvm_backend.run(example_text, "default<Oz>")
        counted.append(libllvm_backend.run(text, GVN_SINK_LIST).count)
        printed.append(libllvm_backend.run(text, GVN_SINK_LIST, want_output=True))
    assert {(result.count, result.output) for result in printed} == {(reference.count, reference.output)}
    assert set(counted) == {reference.count}


def test_the_winner_is_counted_as_printed(opt_tool, libllvm_backend, compile_c):
    """A count from a reused worker is only a ranking: the winner is counted again as printed, and when
    that count is worse another candidate may win."""
    function = standalone_functions(compile_c(_similar_cases(24)), ["f"])[1][0]
    sinking = OptBackend(opt_tool).run(function.text, GVN_SINK_LIST, want_output=True)
    engine = Optimizer(opt_tool, jobs=1, backend=libllvm_backend)
    try:
        plain = engine.measure(function, Candidate(LISTS[0], "coreset"))
        assert sinking.count < plain.count  # what makes the check below meaningful
        miscounted = Measurement(GVN_SINK_LIST, "coreset", 1)  # as if a reused worker had counted 1
        _, best = engine.best_printed(function, [miscounted, plain])
        overcounted = Measurement(GVN_SINK_LIST, "coreset", plain.count + 1)
        printed = engine.printed(function, overcounted)
    finally:
        engine.close()
    assert (best.passes, best.count, best.output) == (GVN_SINK_LIST, sinking.count, sinking.output)
    assert (printed.count, printed.output) == (sinking.count, sinking.output)
