"""training.labels: the shared pool, shard storage, resumability, and a real run on a local Dask cluster."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

pytest.importorskip("distributed")

from lsp_server.compiler import find_opt, load_vocabulary, run_opt  # noqa: E402
from lsp_server.ir import count_instructions  # noqa: E402
from training import labels  # noqa: E402


@pytest.fixture(scope="module")
def vocabulary():
    return load_vocabulary(find_opt())


def test_pool_is_levels_coreset_winners_then_valid_random_lists(vocabulary):
    coreset = ["sroa,instcombine,simplifycfg", "default<Os>", "not-a-pass"]
    winners = ["module(sroa,gvn)", "sroa,instcombine,simplifycfg"]  # the second repeats a coreset list
    pool = labels.build_pool(vocabulary, coreset, winners, size=40, seed=3)
    kinds = [p.kind for p in pool]
    assert [p.passes for p in pool[:5]] == list(labels.LEVELS)
    assert kinds.count("coreset") == 1  # default<Os> is a level already; not-a-pass is refused
    assert kinds.count("local") == 1
    assert len(pool) == 40 and kinds[-1] == "random"
    checked = [vocabulary.check(p.passes) for p in pool]
    assert len(set(checked)) == len(checked)
    assert labels.build_pool(vocabulary, coreset, winners, size=40, seed=3) == pool
    assert labels.pool_sha(pool) != labels.pool_sha(pool[:-1])


def test_mutations_stay_valid_pipelines(vocabulary):
    from lsp_server.engine.sources import search_space

    space = search_space(vocabulary.names)
    rng = random.Random(0)
    for start in ("default<Oz>,instcombine,gvn", "module(sroa,simplifycfg)", "sroa,instcombine<max-iterations=4>,gvn"):
        items = labels.split_pipeline(start)
        for _ in range(30):
            items = labels.mutate(items, space, rng) or items
            vocabulary.check(labels.render(items))
    assert labels.split_pipeline("module(sroa,function(gvn))") == ["sroa", "function(gvn)"]


def test_store_writes_shards_atomically_and_loads_them(tmp_path):
    store = labels.LabelStore(tmp_path / "labels")
    pool = [labels.PoolList("default<Oz>", "level"), labels.PoolList("module(sroa)", "random")]
    store.create(pool, {"backend": "opt", "version": "22.1.8"}, {})
    entries = [{"hash": "h1", "path": "p/1.ll", "pkg": "p"}, {"hash": "h2", "path": "q/2.ll", "pkg": "q"}]
    result = {"counts": np.array([[5, 7], [9, -1]]), "original": np.array([11, 20]), "seconds": 0.5, "compiler": {"backend": "opt"}}
    store.write_shard(store.next_shard_number(), entries, result)
    store.write_shard(store.next_shard_number(), [{"hash": "h3", "path": "p/3.ll", "pkg": "p"}],
                      {"counts": np.array([[4, 3]]), "original": np.array([8]), "seconds": 0.1, "compiler": {"backend": "opt"}})
    assert sorted(p.name for p in (tmp_path / "labels" / "shards").iterdir()) == ["00000.npz", "00001.npz"]
    loaded = store.load()
    assert loaded.counts.dtype == np.int32 and loaded.counts.shape == (3, 2)
    assert loaded.hashes == ["h1", "h2", "h3"] and loaded.pkgs == ["p", "q", "p"]
    assert loaded.oz.tolist() == [5, 9, 4]
    assert loaded.best().tolist() == [5, 9, 3]  # a failed list (-1) never counts as best
    assert store.labelled_hashes() == {"h1", "h2", "h3"}
    with pytest.raises(SystemExit, match="LLVM 22.1.8"):
        store.check(store.index(), {"version": "21.1.0"})


def test_local_cluster_of_two_workers_labels_resumably(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "labels"
    common = ["--corpus", str(tiny_corpus), "--out", str(out), "--pool-size", "14", "--seed-functions", "2",
              "--local-steps", "4", "--shard-size", "2", "--workers", "2", "--coreset", str(tmp_path / "none.txt")]
    assert labels.main([*common, "--limit", "4"]) == 0
    index = json.loads((out / "index.json").read_text())
    assert len(index["pool"]) == 14 and index["compiler"]["version"] == find_opt().version
    assert [s["functions"] for s in index["shards"]] == [2, 2]
    first = labels.LabelStore(out).load()
    # the round-robin spreads over packages (the 4 rows of 2 shards, which may finish in either order)
    assert len(set(first.pkgs)) >= 3
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}

    assert labels.main(common) == 0  # resume: only the two functions left
    index = json.loads((out / "index.json").read_text())
    assert [s["functions"] for s in index["shards"]] == [2, 2, 2]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir() if p.name in stamps} == stamps
    loaded = labels.LabelStore(out).load()
    assert len(set(loaded.hashes)) == 6 and (loaded.counts > 0).all()

    # Each stored count is what `opt` itself gives (checked for -Oz and one random list).
    opt = find_opt()
    manifest = {json.loads(line)["hash"]: json.loads(line) for line in (tiny_corpus / "manifest.jsonl").read_text().splitlines()}
    vocabulary = load_vocabulary(opt)
    for row, digest in enumerate(loaded.hashes[:3]):
        text = (tiny_corpus / manifest[digest]["path"]).read_text()
        assert loaded.original[row] == count_instructions(text)
        for col in (loaded.oz_column, len(loaded.pool) - 1):
            run = run_opt(opt, vocabulary.check(loaded.pool[col]), text)
            assert run.ok and count_instructions(run.output) == loaded.counts[row, col]
    assert '"usable": 6' in capsys.readouterr().out


def test_a_lists_pass_labels_under_given_lists_only(tiny_corpus, tmp_path):
    lists = tmp_path / "lists.txt"
    lists.write_text("# two lists\nmodule(sroa,gvn)  # -3\ndefault<O2>\n")
    out = tmp_path / "cheap"
    common = ["--corpus", str(tiny_corpus), "--out", str(out), "--shard-size", "3", "--workers", "2", "--limit", "3"]
    assert labels.main([*common, "--lists", str(lists)]) == 0
    loaded = labels.LabelStore(out).load()
    assert loaded.pool == [*labels.LEVELS, "module(sroa,gvn)"] and loaded.counts.shape == (3, 6)
    lists.write_text("module(dce)\n")
    with pytest.raises(SystemExit, match="other lists"):
        labels.main([*common, "--lists", str(lists)])


def test_retry_failed_measures_failed_pairs_again_and_rewrites_only_them(tiny_corpus, tmp_path, capsys):
    lists = tmp_path / "lists.txt"
    lists.write_text("module(sroa,instcombine,gvn)\n")
    out = tmp_path / "retry"
    common = ["--corpus", str(tiny_corpus), "--out", str(out), "--shard-size", "2", "--workers", "2", "--limit", "4"]
    assert labels.main([*common, "--lists", str(lists)]) == 0
    store = labels.LabelStore(out)
    measured = store.load().counts.copy()
    assert (measured > 0).all()
    # As if two measurements had failed (a worker killed under load, a since-fixed check): mark them failed.
    shard = out / "shards" / "00000.npz"
    with np.load(shard) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["counts"][0, -1] = labels.FAILED
    arrays["counts"][1, 0] = labels.FAILED
    np.savez_compressed(shard, **arrays)
    untouched = (out / "shards" / "00001.npz").stat().st_mtime_ns
    capsys.readouterr()

    assert labels.main([*common, "--retry-failed"]) == 0
    assert "2 of 2 failed measurements now succeed" in capsys.readouterr().err
    assert np.array_equal(store.load().counts, measured)
    assert (out / "shards" / "00001.npz").stat().st_mtime_ns == untouched
    with pytest.raises(SystemExit, match="no labels"):
        labels.main(["--corpus", str(tiny_corpus), "--out", str(tmp_path / "none"), "--workers", "1", "--retry-failed"])
