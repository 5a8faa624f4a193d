"""scripts/bench_room.py: the model's first picks through llama.cpp, and the room at budget 1 read from a label folder."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from training.labels import FAILED, OZ, Labels  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_room.py"


@pytest.fixture(scope="module")
def script():
    return runpy.run_path(str(SCRIPT))  # a script, not a package: its functions, without running main


def _labels() -> Labels:
    pool = [OZ, "module(sroa,instcombine)", "module(gvn)", "module(dce)"]
    # rows: -Oz, then the three lists; the coreset is [instcombine list, gvn]; dce is outside the coreset
    counts = np.array([
        [10, 8, 9, 10],     # small, a: the coreset's first is best
        [100, 100, 90, 95],  # medium, a: gvn best
        [300, 310, 300, 250],  # large, b: dce best, the coreset's first is worse than -Oz
        [20, FAILED, 20, 20],  # b: the coreset's first failed: -Oz stands
    ], dtype=np.int32)
    return Labels(pool=pool, kinds=["level", "x", "x", "x"], counts=counts, original=np.array([12, 120, 330, 25], dtype=np.int32),
                  hashes=["h1", "h2", "h3", "h4"], paths=["a/1.ll", "a/2.ll", "b/3.ll", "b/4.ll"], pkgs=["a", "a", "b", "b"],
                  compiler={})


def test_room_compares_the_coreset_first_the_model_pick_and_a_perfect_choice(script):
    # the model's picks: the instcombine list, gvn, and twice no pick in the pool (-Oz alone)
    report = script["room"](_labels(), ["module(sroa,instcombine)", "module(gvn)"], np.array([1, 2, -1, -1]))
    oz = 10 + 100 + 300 + 20
    assert report["oz_total"] == oz
    assert report["coreset_first"] == round(100 * (2 + 0 + 0 + 0) / oz, 2)
    assert report["model_picks_found"] == 2
    assert report["model_first_pick"] == round(100 * (2 + 10) / oz, 2)
    assert report["perfect_choice_of_one_coreset_list"] == round(100 * (2 + 10) / oz, 2)
    assert report["perfect_choice_of_one_list"] == round(100 * (2 + 10 + 50) / oz, 2)
    assert report["best_single_list_in_hindsight"]["passes"] == "module(dce)"
    assert report["groups"]["package b"]["perfect"] == round(100 * 50 / 320, 2)
    assert report["groups"]["-Oz size 200-1000"]["functions"] == 1
    assert report["room_over_coreset_first"]["instructions"] == 10 + 50
    assert [row["file"] for row in report["rows"]][:2] == ["b/3.ll", "a/2.ll"]  # largest room first
    assert report["pool"][report["rows"][0]["best_list"]] == "module(dce)"
    assert report["lists"] == 4
    with pytest.raises(ValueError):
        script["room"](_labels(), ["module(gvn)"], np.array([1, 2]))


def test_without_a_model_there_is_no_model_column_and_the_report_reads_back(script, tmp_path):
    report = script["room"](_labels(), ["module(sroa,instcombine)"], None)
    assert report["model_first_pick"] is None and report["rows"][0]["model_pick"] is None
    assert report["coreset_order"]["30"] == report["coreset_first"]
    script["write_report"](tmp_path / "room.json", report)
    assert json.loads((tmp_path / "room.json").read_text()) == report


def test_model_picks_are_the_lists_the_model_source_leads_with(script, tmp_path):
    from lsp_server.model import load_proposer

    from .test_ranking import FUNCTION, _ranking_gguf

    stored = ["module(gvn)", "module(sroa)", "module(instcombine)"]
    path = _ranking_gguf(tmp_path, stored, top=1)
    (tmp_path / "a.ll").write_text(FUNCTION)
    (tmp_path / "b.ll").write_text(FUNCTION.replace("add", "mul"))
    proposer = load_proposer(path, threads=1)
    firsts = [proposer.rank((tmp_path / name).read_text())[0].passes for name in ("a.ll", "b.ll")]
    proposer.close()
    pool = [OZ, *reversed(stored)]  # the label folder's own column order
    assert script["model_picks"](path, tmp_path, ["a.ll", "b.ll"], pool, 1).tolist() == [pool.index(first) for first in firsts]
    without = [text for text in pool if text != firsts[0]]  # the first function's pick is not in this pool: no pick
    assert script["model_picks"](path, tmp_path, ["a.ll"], without, 1).tolist() == [-1]
