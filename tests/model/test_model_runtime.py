"""The llama.cpp runtime on tiny random-weight GGUFs (real llama-cpp-python, no mocks)."""

from __future__ import annotations

import re
import sys
import threading

import pytest

from lsp_server.model import ModelError, PassProposer, Proposal, Proposals, load_proposer
from lsp_server.model.gguf_info import read_gguf_info

SMALL_IR = """\
define i32 @add_one(i32 %x) {
entry:
  %y = add nsw i32 %x, 1
  ret i32 %y
}
"""


def test_identity_and_header(tiny_gguf, tiny_proposer):
    assert isinstance(tiny_proposer, PassProposer)
    assert tiny_proposer.identity.startswith("tiny-passpilot F32 (")
    assert tiny_proposer.identity.endswith("tiny-passpilot.gguf)")
    info = read_gguf_info(tiny_gguf)
    assert info.architecture == "llama"
    assert info.context_length == 256


def test_generation_gives_proposals_not_exceptions(tiny_proposer):
    result = tiny_proposer.propose(SMALL_IR, samples=4, seed=7)
    assert isinstance(result, Proposals)
    assert all(isinstance(p, Proposal) for p in result)
    passes = [p.passes for p in result]
    assert len(passes) == len(set(passes)), "identical pass lists must be de-duplicated"
    for proposal in result:
        assert proposal.passes and proposal.raw
        assert proposal.predicted_before is None or isinstance(proposal.predicted_before, int)


def test_greedy_sample_is_deterministic(tiny_proposer):
    first = tiny_proposer.propose(SMALL_IR, samples=1)
    second = tiny_proposer.propose(SMALL_IR, samples=1)
    assert [p.raw for p in first] == [p.raw for p in second]
    assert len(first) <= 1


def test_known_passes_filter_garbage(tiny_gguf):
    proposer = load_proposer(tiny_gguf, threads=1, known_passes={"sroa", "gvn", "instcombine<max-iterations=N>"})
    try:
        result = proposer.propose(SMALL_IR, samples=6, seed=1)
        for proposal in result:
            for item in proposal.passes.split(","):
                assert item.split("(")[-1].rstrip(")") in {"sroa", "gvn", "instcombine"}
    finally:
        proposer.close()


def test_too_long_function_is_read_by_its_head_with_a_note(tiny_proposer):
    body = "\n".join(f"  %v{i} = add i32 %x, {i}" for i in range(200))
    long_ir = f"define i32 @big(i32 %x) {{\n{body}\n  ret i32 %x\n}}\n"
    result = tiny_proposer.propose(long_ir, samples=2)
    match = re.search(r"read the first (\d+) of (\d+) IR tokens", result.note)
    assert match and int(match.group(1)) < int(match.group(2))
    assert tiny_proposer.answer(long_ir) is not None


def test_unreadable_input_gives_a_note(tiny_proposer):
    result = tiny_proposer.propose("this is not IR", samples=2)
    assert list(result) == []
    assert result.note and "prompt" in result.note


def test_concurrent_callers(tiny_proposer):
    results: list[list[Proposal]] = []
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            results.append(tiny_proposer.propose(SMALL_IR, samples=2, seed=seed))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 3


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_proposer(tmp_path / "nope.gguf")


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="not a file"):
        load_proposer(tmp_path)


def test_not_a_gguf_file(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_text("definitely not a model\n")
    with pytest.raises(ModelError, match="not a GGUF"):
        load_proposer(bogus)


def test_truncated_gguf(tiny_gguf, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:200])
    with pytest.raises(ModelError, match="GGUF"):
        load_proposer(cut).load()


def test_gguf_header_ok_but_weights_missing(tiny_gguf, tmp_path):
    data = tiny_gguf.read_bytes()
    cut = tmp_path / "no-weights.gguf"
    cut.write_bytes(data[: len(data) - 4096])
    proposer = load_proposer(cut, threads=1)
    with pytest.raises(ModelError, match="could not load"):
        proposer.load()


def test_foreign_model_with_passpilot_profile(tiny_foreign_gguf):
    proposer = load_proposer(tiny_foreign_gguf, threads=1)
    with pytest.raises(ModelError, match="not a PassPilot model"):
        proposer.load()
    with pytest.raises(ModelError, match="not a PassPilot model"):  # remembered, not reloaded
        proposer.propose("define void @f() {\n  ret void\n}\n", samples=1)


def test_ftd_profile_runs_on_a_llama_model(tiny_foreign_gguf):
    # The tiny model's 256-token context cannot hold the FTD instruction plus an answer: a note, no error.
    proposer = load_proposer(tiny_foreign_gguf, profile="llm-compiler-ftd", threads=1)
    try:
        assert "[llm-compiler-ftd]" in proposer.identity
        result = proposer.propose(SMALL_IR, samples=2)
        assert list(result) == [] and "too long" in result.note
    finally:
        proposer.close()


def test_unknown_profile(tiny_gguf):
    with pytest.raises(ModelError, match="unknown model profile"):
        load_proposer(tiny_gguf, profile="gpt-9")


def test_llama_cpp_missing(tiny_gguf, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(ModelError, match="pip install"):
        load_proposer(tiny_gguf)
