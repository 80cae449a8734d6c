"""The report's statistics on constructed data whose answer is known."""

import numpy as np
import pytest

from innerpo.report.stats import mean_ci, paired_difference


def _flags(rng, p, shape):
    return (rng.random(shape) < p).astype(float)


def test_mean_ci_hand_computed_point_and_degenerate_data():
    m = np.array([[1, 0, 1, 1], [0, 0, 1, 1]], dtype=float)
    est = mean_ci(m)
    assert est.mean == pytest.approx(5 / 8)
    assert est.low <= est.mean <= est.high
    assert (est.n_seeds, est.n_pairs, est.resampled) == (2, 4, "seeds and pairs")
    same = mean_ci(np.ones((3, 10)))  # every seed right on every pair: no spread at all
    assert (same.mean, same.low, same.high) == (1.0, 1.0, 1.0)


def test_one_seed_resamples_pairs_only_and_matches_a_binomial_interval():
    rng = np.random.default_rng(0)
    m = _flags(rng, 0.7, (1, 400))
    est = mean_ci(m)
    assert est.resampled == "pairs"
    half = 1.96 * np.sqrt(m.mean() * (1 - m.mean()) / 400)  # normal approximation
    assert est.high - est.low == pytest.approx(2 * half, rel=0.15)


def test_better_on_every_pair_excludes_zero():
    rng = np.random.default_rng(1)
    base = _flags(rng, 0.5, (5, 60))
    better = np.maximum(base, _flags(rng, 0.3, (5, 60)))
    better[:, 0] = 1.0
    base[:, 0] = 0.0  # better on at least one pair in every seed, never worse
    est = paired_difference(better, base, seeds_match=True)
    assert est.mean > 0 and est.low > 0 and est.excludes_zero


def test_identical_methods_cover_zero():
    rng = np.random.default_rng(2)
    a = _flags(rng, 0.6, (5, 100))
    b = np.array(a)
    est = paired_difference(a, b, seeds_match=True)
    assert est.mean == 0 and est.low <= 0 <= est.high and not est.excludes_zero
    # Two methods drawn from the same distribution (unpaired seeds): CI covers 0.
    c = _flags(np.random.default_rng(3), 0.6, (5, 100))
    est = paired_difference(a, c, seeds_match=False)
    assert est.low <= 0 <= est.high


def test_worse_method_has_negative_difference():
    rng = np.random.default_rng(4)
    good = _flags(rng, 0.8, (4, 200))
    bad = good * _flags(rng, 0.6, (4, 200))  # loses some pairs the good one wins
    est = paired_difference(bad, good, seeds_match=True)
    assert est.high < 0


def test_ci_narrows_with_more_seeds():
    rng = np.random.default_rng(5)

    # Seeds differ in their overall level (training noise) on top of pair noise.
    def run(n_seeds):
        levels = rng.normal(0.65, 0.08, size=(n_seeds, 1))
        return (rng.random((n_seeds, 200)) < levels).astype(float)

    widths = [np.mean([(lambda e: e.high - e.low)(mean_ci(run(n), seed=k)) for k in range(3)]) for n in (3, 20)]
    assert widths[1] < 0.7 * widths[0]


def test_seed_spread_widens_the_interval_beyond_pairs_alone():
    """With strong seed-to-seed variation, resampling seeds must widen the CI: a CI over
    pairs alone would be falsely narrow."""
    rng = np.random.default_rng(6)
    levels = np.array([[0.3], [0.9], [0.5], [0.8], [0.4]])
    m = (rng.random((5, 300)) < levels).astype(float)
    both = mean_ci(m)
    pooled = mean_ci(m.reshape(1, -1))  # treated as one long seed: pairs only
    assert (both.high - both.low) > 2 * (pooled.high - pooled.low)


def test_unequal_pair_columns_are_refused():
    with pytest.raises(ValueError, match="same pairs"):
        paired_difference(np.ones((2, 3)), np.ones((2, 4)), seeds_match=False)
