"""A short, seeded run of the edit-session fuzzer (tests/lsp/fuzz_sessions.py) in CI; the long run is
`scripts/fuzz_lsp.py --sessions 500` (figures in docs/fuzzing.md)."""

from __future__ import annotations

import pytest

from .fuzz_sessions import Limits, corpus, run_server

pytestmark = pytest.mark.asyncio(loop_scope="function")

SMALL_MODULES = [module for module in corpus(limit_benchmark=0)]


@pytest.mark.parametrize(("profile", "seeds"), [("visual-studio-code", [1, 2, 3]), ("neovim", [4, 5])])
async def test_random_edit_sessions(profile, seeds, tmp_path):
    tally = await run_server(seeds, SMALL_MODULES, steps=40, cache_dir=tmp_path / "cache", profile=profile, limits=Limits(request_s=20, measured_s=60))
    print(tally.summary())
    assert tally.sessions == len(seeds) and tally.edits > 0 and tally.requests > 0
    assert tally.failures == [], "\n\n".join(tally.failures)
