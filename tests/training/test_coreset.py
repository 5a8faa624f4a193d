"""training.coreset: greedy selection by marginal gain, the curve, K, and writing only a winner (synthetic labels)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("distributed")

from training import coreset, labels  # noqa: E402


def test_greedy_picks_by_marginal_gain_not_by_mean():
    oz = np.array([10, 10, 10, 10])
    costs = np.array([
        # A wins big on rows 0-1; B a little on every row; C exactly the rows A misses
        [4, 9, 10],
        [4, 9, 10],
        [10, 9, 7],
        [10, 9, 7],
    ])
    picked = coreset.greedy(costs, oz, k=3)
    assert picked == [(0, 12), (2, 6)]  # B's 4 instructions are all covered once A and C are in
    assert coreset.gain_curve(costs, oz, [0, 2]) == pytest.approx([30.0, 45.0])


def test_failed_lists_never_win_and_k_follows_the_curve():
    counts = np.array([[5, labels.FAILED], [6, labels.FAILED]])
    costs = coreset.as_costs(counts)
    assert coreset.greedy(costs, np.array([6, 6]), k=2) == [(0, 1)]
    assert coreset.choose_k([1.0, 2.0, 2.95, 3.0], keep=0.98) == 3
    assert coreset.choose_k([1.0, 2.0, 2.95, 3.0], keep=1.0) == 4


def test_held_out_split_is_fixed_by_hash():
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]
    held = coreset.held_out(hashes)
    assert 0.17 < held.mean() < 0.23
    assert (coreset.held_out(hashes) == held).all()


def _synthetic_store(tmp_path, current: list[str]):
    """Functions of three kinds, each won by one list; the current coreset knows only the first kind."""
    rng = np.random.default_rng(0)
    pool = [labels.PoolList(p, k) for p, k in [("default<Oz>", "level"), ("module(sroa)", "random"),
                                                ("module(gvn)", "random"), ("module(dce)", "random"), ("module(adce)", "random")]]
    store = labels.LabelStore(tmp_path / "labels")
    store.create(pool, {"backend": "opt", "version": "22.1.8"}, {})
    n = 600
    kind = rng.integers(0, 3, n)
    oz = rng.integers(20, 60, n)
    counts = np.repeat(oz[:, None], len(pool), axis=1)
    counts[np.arange(n), 1 + kind] = oz - 1 - kind  # list 1+kind wins on its kind
    counts[:, 4] = oz + 2  # never useful
    entries = [{"hash": hashlib.sha256(f"f{i}".encode()).hexdigest(), "path": f"p/{i}.ll", "pkg": "p"} for i in range(n)]
    store.write_shard(0, entries, {"counts": counts, "original": oz * 2, "seconds": 1.0, "compiler": {"backend": "opt"}})
    (tmp_path / "current.txt").write_text("".join(f"{p}  # old\n" for p in current))
    return store


def test_main_writes_the_coreset_only_when_it_wins(tmp_path, capsys):
    _synthetic_store(tmp_path, ["module(sroa)"])
    out = tmp_path / "coreset.txt"
    common = ["--labels", str(tmp_path / "labels"), "--current", str(tmp_path / "current.txt"), "--out", str(out),
              "--curve", str(tmp_path / "curve.json"), "--plot", str(tmp_path / "curve.png"), "--max-k", "4", "--write"]
    assert coreset.main(common) == 0
    printed = capsys.readouterr().out
    assert "chosen K = 3" in printed
    written = [line.split("#")[0].strip() for line in out.read_text().splitlines() if not line.startswith("#")]
    assert written == ["module(dce)", "module(gvn)", "module(sroa)"]  # the largest removal first
    curve = json.loads((tmp_path / "curve.json").read_text())
    assert curve["k"] == 3 and curve["new_wins"] and len(curve["held_out_gain_percent"]) == 3
    assert (tmp_path / "curve.png").stat().st_size > 10_000

    # A current file that is already the best is left alone.
    (tmp_path / "current.txt").write_text("module(dce)\nmodule(gvn)\nmodule(sroa)\n")
    out.write_text("unchanged\n")
    assert coreset.main(common) == 0
    assert "does NOT beat" in capsys.readouterr().out
    assert out.read_text() == "unchanged\n"


def test_main_reads_several_label_folders_as_one_pool(tmp_path, capsys):
    """The whole corpus under some lists in one folder and under others in another: one coreset over both pools,
    from the functions every list measured."""
    rng = np.random.default_rng(1)
    n = 400
    kind = rng.integers(0, 2, n)
    oz = rng.integers(20, 60, n)
    entries = [{"hash": hashlib.sha256(f"f{i}".encode()).hexdigest(), "path": f"p/{i}.ll", "pkg": "p"} for i in range(n)]
    for folder, name, wins_on, gain in (("first", "module(sroa)", 0, 1), ("second", "module(gvn)", 1, 3)):
        store = labels.LabelStore(tmp_path / folder)
        store.create([labels.PoolList("default<Oz>", "level"), labels.PoolList(name, "random")], {"backend": "opt", "version": "22.1.8"}, {})
        counts = np.stack([oz, np.where(kind == wins_on, oz - gain, oz + 1)], axis=1)
        m = n - 50 * wins_on
        store.write_shard(0, entries[:m], {"counts": counts[:m], "original": oz[:m] * 2, "seconds": 1.0, "compiler": {"backend": "opt"}})
    pool, costs, oz_counts, hashes = coreset.read_labels([tmp_path / "first", tmp_path / "second"])
    assert pool == ["default<Oz>", "module(sroa)", "module(gvn)"]
    assert len(hashes) == n - 50 and costs.shape == (n - 50, 3)  # the functions only the first folder measured are left out
    (tmp_path / "current.txt").write_text("module(sroa)\n")
    out = tmp_path / "coreset.txt"
    assert coreset.main(["--labels", f"{tmp_path / 'first'},{tmp_path / 'second'}", "--current", str(tmp_path / "current.txt"),
                         "--out", str(out), "--curve", str(tmp_path / "curve.json"), "--plot", str(tmp_path / "curve.png"),
                         "--max-k", "3", "--write"]) == 0
    written = [line.split("#")[0].strip() for line in out.read_text().splitlines() if not line.startswith("#")]
    assert written == ["module(gvn)", "module(sroa)"]
    assert "pool of 3 lists" in capsys.readouterr().out
