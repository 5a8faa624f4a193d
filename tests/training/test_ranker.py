"""training.model.ranker: targets and budget figures from label counts (no model, no compiler)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")

from training.labels import FAILED  # noqa: E402
from training.model.ranker import budget_gains, list_gains, rank_targets  # noqa: E402


def test_gains_cap_at_oz_and_failures_gain_nothing():
    counts = np.array([[8, 12, FAILED], [10, 10, 10]])
    gains = list_gains(counts, np.array([10, 10]))
    np.testing.assert_allclose(gains, [[0.2, 0.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)


def test_targets_put_the_mass_near_the_best_list():
    targets = rank_targets(np.array([[0.20, 0.19, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32))
    assert targets.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert targets[0, 0] > targets[0, 1] > 10 * targets[0, 2]
    assert targets[1].tolist() == pytest.approx([1 / 3] * 3)  # nothing to learn: no preference


def test_budget_gains_compile_the_best_scored_lists_and_keep_oz():
    counts = np.array([[9, 7, 12], [20, 25, 18]])
    oz = np.array([10, 20])
    fixed = np.tile(-np.arange(3, dtype=np.float32), (2, 1))
    assert budget_gains(fixed, counts, oz, budgets=(1, 2, 3)) == {1: pytest.approx(100 / 30, abs=1e-3), 2: 10.0, 3: pytest.approx(500 / 30, abs=1e-3)}
    oracle = np.array([[0, 1, 0], [0, 0, 1]], dtype=np.float32)
    assert budget_gains(oracle, counts, oz, budgets=(1,)) == {1: pytest.approx(500 / 30, abs=1e-3)}
    failed = np.array([[FAILED, 7, 12], [20, 25, 18]])
    assert budget_gains(fixed, failed, oz, budgets=(1,)) == {1: 0.0}  # a failed list leaves -Oz
