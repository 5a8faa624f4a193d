"""scripts/bench_room.py: the room at budget 1 read from a benchmark label folder and a bench run's rows."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from training.labels import FAILED, OZ, Labels  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_room.py"


@pytest.fixture(scope="module")
def room():
    return runpy.run_path(str(SCRIPT))["room"]  # a script, not a package: its functions, without running main


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


def test_room_compares_the_coreset_first_the_model_pick_and_a_perfect_choice(room):
    rows = [  # the model's picks as a bench run records them: checked text, with InstCombine's option added
        {"file": "a/1.ll", "predicted": {"passes": "module(sroa,instcombine<no-verify-fixpoint>)"}},
        {"file": "a/2.ll", "predicted": {"passes": "module(gvn)"}},
        {"file": "b/3.ll", "predicted": {"passes": "module(licm)"}},  # not in the pool: -Oz alone
        {"file": "b/4.ll", "predicted": None},
    ]
    report = room(_labels(), ["module(sroa,instcombine)", "module(gvn)"], rows)
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
    assert report["rows"][0]["best_passes"] == "module(dce)"


def test_without_a_bench_run_there_is_no_model_column(room):
    report = room(_labels(), ["module(sroa,instcombine)"], None)
    assert report["model_first_pick"] is None and report["rows"][0]["model_pick"] is None
    assert report["coreset_order"]["30"] == report["coreset_first"]
