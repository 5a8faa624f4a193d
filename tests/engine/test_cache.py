import logging
import sqlite3

from lsp_server.engine import CoresetSource, Optimizer, ResultCache, standalone_functions
from lsp_server.engine.cache import cache_key


def test_round_trip(tmp_path):
    cache = ResultCache(tmp_path / "c")
    key = cache_key("22.1.8", "define void @f() { ret void }", "instcombine")
    cache.put(key, 7, None, "module text")
    assert cache.get(key) == {"count": 7, "error": None, "output": "module text"}
    assert cache.get(cache_key("21.1.0", "define void @f() { ret void }", "instcombine")) is None


def test_unusable_directory_degrades_to_no_cache(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING):
        cache = ResultCache(blocker / "cache")
        cache.put("k", 1, None, None)
        assert cache.get("k") is None
    assert not cache.enabled
    assert len([r for r in caplog.records if "disabled" in r.message]) == 1


def test_corrupt_cache_degrades_to_no_cache(tmp_path, caplog):
    directory = tmp_path / "c"
    ResultCache(directory).close()
    (directory / "cache.db").write_bytes(b"this is not sqlite" * 100)
    with caplog.at_level(logging.WARNING):
        cache = ResultCache(directory)
        cache.put("k", 1, None, None)
        cache.get("k")
        cache.put("k2", 1, None, None)
    assert not cache.enabled
    assert len([r for r in caplog.records if "disabled" in r.message]) == 1


def test_locked_cache_degrades_to_no_cache(tmp_path, caplog):
    directory = tmp_path / "c"
    cache = ResultCache(directory)
    lock = sqlite3.connect(directory / "cache.db", timeout=0)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING):
            cache.put("k", 1, None, None)
            cache.put("k2", 1, None, None)
        assert not cache.enabled
        assert len([r for r in caplog.records if "disabled" in r.message]) == 1
    finally:
        lock.rollback()
        lock.close()


def test_optimizer_uses_cache_and_survives_without_it(tmp_path, opt_tool, example_text):
    function = standalone_functions(example_text, ["grade"])[1][0]
    cache = ResultCache(tmp_path / "c")
    engine = Optimizer(opt_tool, sources=[CoresetSource(["instcombine"])], cache=cache, jobs=1)
    try:
        first = engine.optimize(function, budget=1, sources=["coreset"])
        second = engine.optimize(function, budget=1, sources=["coreset"])
        assert not any(m.cached for m in first.measurements)
        assert all(m.cached for m in second.measurements)
        assert [m.count for m in first.measurements] == [m.count for m in second.measurements]
        (tmp_path / "c" / "cache.db").write_bytes(b"garbage" * 1000)
        cache._disable(RuntimeError("simulated"))
        third = engine.optimize(function, budget=1, sources=["coreset"])
        assert [m.count for m in third.measurements] == [m.count for m in first.measurements]
    finally:
        engine.close()


class _CountingProposer:
    """A model stand-in that counts its inferences (the cache, not the model, is under test here)."""

    def __init__(self):
        self.calls = 0

    def propose(self, text, samples):
        from lsp_server.model.types import Proposal

        self.calls += 1
        return [Proposal("sroa,instcombine", 30, 12, "raw"), Proposal("gvn", 30, 20, "raw", note="n")][:samples]


def test_model_proposals_are_kept_in_the_result_cache(tmp_path):
    from lsp_server.engine import ModelSource
    from lsp_server.ir import StandaloneFunction

    function = StandaloneFunction(name="f", token="@f", text="define void @f() {\n  ret void\n}\n", linkage=None, optnone_removed=False)
    other = StandaloneFunction(name="g", token="@g", text="define void @g() {\n  ret void\n}\n", linkage=None, optnone_removed=False)
    cache = ResultCache(tmp_path / "cache")
    proposer = _CountingProposer()
    source = ModelSource(proposer, 2, cache=cache, model_key="m1|123")
    first = list(source.candidates(function, 10))
    assert proposer.calls == 1 and [c.passes for c in first] == ["sroa,instcombine", "gvn"]
    again = list(ModelSource(proposer, 2, cache=ResultCache(tmp_path / "cache"), model_key="m1|123").candidates(function, 10))
    assert proposer.calls == 1, "a second engine on the same cache reads the proposals back"
    assert [(c.passes, c.predicted_before, c.predicted_after, c.note, c.source) for c in again] == [
        (c.passes, c.predicted_before, c.predicted_after, c.note, c.source) for c in first
    ]
    list(source.candidates(other, 10))  # another function
    list(ModelSource(proposer, 2, cache=cache, model_key="m2|456").candidates(function, 10))  # another model file
    list(ModelSource(proposer, 1, cache=cache, model_key="m1|123").candidates(function, 10))  # other samples
    assert proposer.calls == 4
    uncached = ModelSource(proposer, 2)
    list(uncached.candidates(function, 10))
    list(uncached.candidates(function, 10))
    assert proposer.calls == 6, "without a cache (--no-cache) the model runs every time"
