"""A short, seeded fuzz campaign through the real CLI (the long one: `scripts/fuzz_cli.py`)."""

from __future__ import annotations

import pytest

from .harness import run_cli
from .mutations import mutate, seed_corpus

INPUTS = 60


def test_fuzzed_inputs_never_crash_hang_or_write_invalid_ir(tmp_path, opt_tool):
    corpus = seed_corpus(limit_benchmark=10)
    statuses: dict[str, int] = {}
    defects = []
    for seed in range(INPUTS):
        name, data = corpus[seed % len(corpus)]
        fuzzed, mutations = mutate(seed, data)
        outcome = run_cli(fuzzed, tmp_path, extra=["--budget", "1", "--sources", "coreset"], time_limit=60, opt=opt_tool.path)
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        if outcome.defect:
            defects.append(f"seed {seed} ({name}, {'+'.join(mutations)}): {outcome.status}\n{outcome.detail}")
    assert not defects, "\n\n".join(defects)
    # The campaign must exercise both outcomes, or it tests nothing.
    assert statuses.get("ok", 0) > 0 and statuses.get("bad-input", 0) > 0, statuses


@pytest.mark.parametrize("text", ["", "\n\n", "\x00", "define", "}", "; only a comment\n", "\ufeffdefine void @f() {\n ret void\n}\n"])
def test_degenerate_inputs(tmp_path, opt_tool, text):
    outcome = run_cli(text.encode(), tmp_path, time_limit=60, opt=opt_tool.path)
    assert not outcome.defect, outcome.detail
