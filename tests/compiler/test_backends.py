"""The libllvm backend gives what `opt -passes=…` gives: the same counts and byte-identical printed IR,
and the same failures; the automatic choice falls back to `opt` with one log line."""

from __future__ import annotations

import ast
import json
import logging
import random
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lsp_server.cli import EXIT_NO_OPT, main
from lsp_server.compiler import BackendUnavailable, OptBackend, OptNotFound, OptTool, find_opt, load_vocabulary, open_backend, run_opt
from lsp_server.compiler.libllvm import LibLLVMBackend, find_libllvm
from lsp_server.engine import standalone_functions
from lsp_server.engine.sources import default_coreset, random_pass_list, search_space
from lsp_server.ir import count_instructions

from .conftest import start_libllvm

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "data" / "benchmark"
SEED = 8
# Lists that opt rejects or aborts on: LICM outside loop-mssa is a report_fatal_error on any function with
# a loop; `instcombine` nested in a loop pipeline is not a loop pass.
FAILING_LISTS = ("function(loop(licm))", "indvars,instcombine")


def _fake_opt(tmp_path: Path, script: str, name: str = "opt") -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _lists(opt_tool, rng: random.Random, randoms: int) -> list[str]:
    vocabulary = load_vocabulary(opt_tool)
    space = search_space(vocabulary.names)
    lists = [*default_coreset().pass_lists, *(random_pass_list(rng, space, 16) for _ in range(randoms)), *FAILING_LISTS]
    return [vocabulary.check(passes) for passes in lists]


def _opt_disagrees_with_itself(opt_tool, text: str, passes: str, reference: str, runs: int = 4) -> bool:
    """Some pass combinations make LLVM itself nondeterministic: `reg2mem` after `gvn-sink`, for one, orders
    its allocas by pointer and prints differently from one `opt` process to the next on large functions.
    Such a pair says nothing about the backend."""
    return any(run_opt(opt_tool, passes, text).output != reference for _ in range(runs))


def _compare_all(opt_tool, libllvm, pairs: list[tuple[str, str]]) -> tuple[int, int]:
    """Every (module, pass list): the same success, count and printed module. Returns (succeeded, failed).
    A pair on which `opt` disagrees with itself is left out (at most a few of them)."""

    def both(pair):
        text, passes = pair
        return pair, run_opt(opt_tool, passes, text), libllvm.run(text, passes, want_output=True)

    succeeded = failed = nondeterministic = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for (text, passes), reference, mine in pool.map(both, pairs):
            where = f"{text.splitlines()[0][:60]!r} with {passes}"
            assert mine.ok == reference.ok, f"{where}: opt {reference.error!r}, libllvm {mine.error!r}"
            if reference.ok:
                if mine.output != reference.output and _opt_disagrees_with_itself(opt_tool, text, passes, reference.output):
                    nondeterministic += 1
                    continue
                # Byte for byte, header included: the worker names the module `<stdin>` as opt does for its
                # input, so `; ModuleID` and `source_filename` agree without any normalization.
                assert mine.output == reference.output, where
                assert mine.count == count_instructions(reference.output), where
                succeeded += 1
            else:
                failed += 1
    assert nondeterministic <= max(2, len(pairs) // 50), f"{nondeterministic} pairs on which opt disagrees with itself"
    return succeeded, failed


def test_same_counts_and_ir_as_opt_on_the_examples(opt_tool, libllvm, example_text):
    functions = standalone_functions(example_text)[1]
    functions += standalone_functions((ROOT / "tests" / "lsp" / "fixtures" / "small.ll").read_text())[1]
    rng = random.Random(SEED)
    lists = _lists(opt_tool, rng, randoms=4)
    assert len(lists) >= 20
    pairs = [(function.text, lists[(index * 7 + k) % len(lists)]) for index, function in enumerate(functions) for k in range(8)]
    pairs += [(function.text, passes) for function in functions[:2] for passes in FAILING_LISTS]
    succeeded, failed = _compare_all(opt_tool, libllvm, pairs)
    assert succeeded >= 60 and failed >= 1


@pytest.mark.skipif(not (BENCHMARK / "manifest.jsonl").is_file(), reason="the public benchmark (data/benchmark) has not been built")
def test_same_counts_and_ir_as_opt_on_the_public_benchmark(opt_tool, libllvm):
    rows = [json.loads(line) for line in (BENCHMARK / "manifest.jsonl").read_text().splitlines() if line.strip()]
    rng = random.Random(SEED)
    sample = rng.sample(rows, min(60, len(rows)))
    lists = _lists(opt_tool, rng, randoms=0)
    space = search_space(load_vocabulary(opt_tool).names)
    checked = load_vocabulary(opt_tool).check
    pairs = []
    for row in sample:
        text = (BENCHMARK / row["path"]).read_text()
        chosen = ["default<Oz>", rng.choice(lists), checked(random_pass_list(rng, space, 16)), *FAILING_LISTS]
        pairs += [(text, passes) for passes in chosen]
    succeeded, failed = _compare_all(opt_tool, libllvm, pairs)
    assert succeeded + failed >= len(pairs) - max(2, len(pairs) // 50) >= 290  # all but the few nondeterministic pairs
    assert failed >= 10, "the failing lists fail on functions with loops, in both"


def test_a_real_llvm_abort_fails_the_same_in_both(opt_tool, libllvm):
    """InstCombine's fixpoint check, asked for, is a report_fatal_error; the worker dies, the next candidate runs."""
    text = (Path(__file__).parent / "fixtures" / "instcombine_fixpoint.ll").read_text()
    passes = load_vocabulary(opt_tool).check("module(lower-switch,dce,early-cse<memssa>,indvars,instcombine<verify-fixpoint>)")
    reference = run_opt(opt_tool, passes, text)
    result = libllvm.run(text, passes)
    assert not reference.ok and "did not reach a fixpoint" in reference.error
    assert not result.ok and "did not reach a fixpoint" in result.error and result.error.startswith("LLVM fatal error")
    assert not result.transient
    again = libllvm.run(text, "instcombine")
    assert again.ok and again.count == count_instructions(run_opt(opt_tool, "instcombine", text).output)


def test_lists_run_without_instcombines_fixpoint_check(opt_tool, libllvm):
    """The same list as written by a source: normalized, it runs InstCombine as the -O pipelines do
    (`no-verify-fixpoint`), and gives what `opt` gives for the normalized list."""
    text = (Path(__file__).parent / "fixtures" / "instcombine_fixpoint.ll").read_text()
    passes = load_vocabulary(opt_tool).check("module(lower-switch,dce,early-cse<memssa>,indvars,instcombine)")
    assert passes == "module(lower-switch,dce,early-cse<memssa>,indvars,instcombine<no-verify-fixpoint>)"
    reference = run_opt(opt_tool, passes, text)
    result = libllvm.run(text, passes, want_output=True)
    assert reference.ok and result.ok and result.output == reference.output
    assert result.count == count_instructions(reference.output)


def test_output_only_when_asked(libllvm, example_text):
    text = standalone_functions(example_text, ["grade"])[1][0].text
    counted = libllvm.run(text, "default<Oz>")
    printed = libllvm.run(text, "default<Oz>", want_output=True)
    assert counted.output is None and counted.count == printed.count == count_instructions(printed.output)
    assert counted.defined == {"grade"}


def test_opt_backend_accepts_only_output_that_parses_and_verifies(tmp_path, opt_tool):
    broken = "define i32 @f(i32 %x) {\n  ret i64 0\n}\n"
    fake = _fake_opt(tmp_path, f"cat >/dev/null\ncat <<'EOF'\n{broken}EOF")
    result = OptBackend(OptTool(str(fake), opt_tool.version)).run("define i32 @f(i32 %x) {\n  ret i32 %x\n}\n", "instcombine")
    assert not result.ok and "does not parse or verify" in result.error


def test_auto_falls_back_to_opt_with_one_log_line(tmp_path, opt_tool, caplog, monkeypatch):
    """An `opt` whose LLVM version has no libLLVM here (a wrapper that says 99.1.0) runs as processes."""
    monkeypatch.delenv("PASSPILOT_BACKEND", raising=False)  # the suite may run with it (opt alone)
    (tmp_path / "bin").mkdir()
    odd = OptTool(str(_fake_opt(tmp_path / "bin", f'exec {opt_tool.path} "$@"')), "99.1.0")
    assert find_libllvm(odd) is None
    with caplog.at_level(logging.INFO, logger="lsp_server.compiler"):
        backend = open_backend("auto", odd, workers=2)
    assert isinstance(backend, OptBackend)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "opt processes" in lines[0] and "no libLLVM 99.1.0" in lines[0]
    with pytest.raises(BackendUnavailable) as caught:
        open_backend("libllvm", odd, workers=2)
    assert "no libLLVM 99.1.0" in str(caught.value)


def test_auto_takes_libllvm_when_it_loads(opt_tool, caplog, monkeypatch):
    if find_libllvm(opt_tool) is None:
        pytest.skip(f"needs the libLLVM of opt {opt_tool.version}")
    monkeypatch.delenv("PASSPILOT_BACKEND", raising=False)  # the suite may run with it (opt alone)
    with caplog.at_level(logging.INFO, logger="lsp_server.compiler"):
        backend = open_backend("auto", opt_tool, workers=1)
    try:
        assert isinstance(backend, LibLLVMBackend)
        assert backend.identity.report() == {"name": "libllvm", "library": str(find_libllvm(opt_tool)), "version": opt_tool.version}
        assert len(caplog.records) == 1 and "libLLVM" in caplog.records[0].getMessage()
    finally:
        backend.close()


def test_environment_makes_auto_take_opt(opt_tool, caplog, monkeypatch):
    """PASSPILOT_BACKEND=opt: `auto` runs `opt` processes without trying libLLVM (what a machine with `opt`
    alone gets; the whole suite can run so); an explicit setting still wins."""
    monkeypatch.setenv("PASSPILOT_BACKEND", "opt")
    with caplog.at_level(logging.INFO, logger="lsp_server.compiler"):
        backend = open_backend("auto", opt_tool, workers=1)
    assert isinstance(backend, OptBackend)
    assert [r.getMessage() for r in caplog.records] == [f"compiler backend: opt processes ({opt_tool.path}), as PASSPILOT_BACKEND=opt says"]
    if find_libllvm(opt_tool) is not None:
        explicit = open_backend("libllvm", opt_tool, workers=1)
        try:
            assert isinstance(explicit, LibLLVMBackend)
        finally:
            explicit.close()


def test_a_library_of_another_version_is_refused(opt_tool):
    if find_libllvm(opt_tool) is None:
        pytest.skip(f"needs the libLLVM of opt {opt_tool.version}")
    major, minor, patch = (opt_tool.version.split(".") + ["0", "0"])[:3]
    other = OptTool(opt_tool.path, f"{major}.{minor}.{int(patch) + 1}")
    with pytest.raises(BackendUnavailable) as caught:
        LibLLVMBackend.start(other, workers=1)
    assert f"is LLVM {opt_tool.version}" in str(caught.value)


def test_worker_imports_only_the_standard_library():
    """llvmlite's static LLVM must never share a process with libLLVM: the worker imports nothing else."""
    source = (ROOT / "lsp_server" / "compiler" / "llvm_worker.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: the worker runs as a script"
            imported.add(node.module.split(".")[0])
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_opt_without_print_passes_is_no_usable_opt(tmp_path, capsys):
    fake = _fake_opt(tmp_path, 'if [ "$1" = --version ]; then echo "LLVM version 22.1.8"; exit 0; fi\necho "opt: Unknown command line argument" >&2\nexit 1')
    with pytest.raises(OptNotFound) as caught:
        load_vocabulary(find_opt(str(fake)))
    assert "--print-passes" in str(caught.value) and "Unknown command line argument" in str(caught.value)
    module = tmp_path / "f.ll"
    module.write_text("define i32 @f(i32 %x) {\n  ret i32 %x\n}\n")
    assert main(["optimize", str(module), "--opt", str(fake), "--model", "none", "--no-cache"]) == EXIT_NO_OPT
    error = capsys.readouterr().err
    assert "--print-passes" in error and "Traceback" not in error
