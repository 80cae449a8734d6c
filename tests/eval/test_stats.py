"""Confidence intervals: hand-computed values and known answers (coverage, direction)."""

import math
import random

import pytest

from innerpo.eval.stats import paired_difference_interval, paired_table, wilson_interval

Z = 1.959963984540054  # the 97.5% normal quantile


def wilson_by_hand(k, n):
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(7, 10), (0, 12), (100, 100), (56, 100), (1, 1)])
def test_wilson_matches_the_formula(k, n):
    assert wilson_interval(k, n) == pytest.approx(wilson_by_hand(k, n), abs=1e-9)


def test_wilson_known_value_and_empty():
    # 1 of 1 correct: the interval is wide and starts well below 1 (an "accuracy 1.000" on 1 pair).
    low, high = wilson_interval(1, 1)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.2065, abs=1e-4)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_paired_table_counts():
    assert paired_table([1, 1, 0, 0, 1], [1, 0, 1, 0, 0]) == (1, 2, 1, 1)


def test_paired_interval_hand_computed():
    # e=36, f=12, g=2, h=0 (n=50): D = 10/50 = 0.2; adjusted cells 12.5/52 and 2.5/52.
    adapter = [1] * 36 + [1] * 12 + [0] * 2
    base = [1] * 36 + [0] * 12 + [1] * 2
    pf, pg = 12.5 / 52, 2.5 / 52
    half = Z * math.sqrt((pf + pg - (pf - pg) ** 2) / 52)
    d, lo, hi = paired_difference_interval(adapter, base)
    assert (
        d == pytest.approx(0.2)
        and lo == pytest.approx(pf - pg - half, abs=1e-12)
        and hi == pytest.approx(pf - pg + half, abs=1e-12)
    )
    assert (lo, hi) == pytest.approx((0.0560, 0.3286), abs=1e-4)  # 0.19231 ∓ 1.95996·√(0.25148/52)


def test_agreement_on_every_pair_still_leaves_room():
    # 100 pairs, the two models right and wrong on exactly the same ones: change 0, and the
    # interval is not zero-width (the weakness of Newcombe's interval here).
    flags = [True] * 60 + [False] * 40
    d, lo, hi = paired_difference_interval(flags, flags)
    assert d == 0 and lo == pytest.approx(-hi) and 0.015 < hi < 0.03


def test_paired_interval_direction_and_identity():
    # Equal discordant counts (f = g = 3): no change, an interval around 0.
    adapter = [1] * 20 + [1] * 3 + [0] * 3 + [0] * 14
    base = [1] * 20 + [0] * 3 + [1] * 3 + [0] * 14
    d, lo, hi = paired_difference_interval(adapter, base)
    assert d == 0 and lo < 0 < hi and hi == pytest.approx(-lo, abs=0.02)
    d, lo, hi = paired_difference_interval([True] * 40, [False] * 40)
    assert d == 1 and 0.8 < lo <= hi == 1.0
    d, lo, hi = paired_difference_interval([False] * 40, [True] * 40)
    assert d == -1 and hi < -0.8


def test_pairing_narrows_the_interval():
    # The same marginals (adapter 60%, base 50%), once with the models agreeing on most
    # pairs and once disagreeing: agreement (positive correlation) must give the narrower interval.
    agree_a = [1] * 50 + [1] * 10 + [0] * 40
    agree_b = [1] * 50 + [0] * 10 + [0] * 40
    disagree_a = [1] * 10 + [1] * 50 + [0] * 40
    disagree_b = [1] * 10 + [0] * 50 + [1] * 40
    _, lo1, hi1 = paired_difference_interval(agree_a, agree_b)
    _, lo2, hi2 = paired_difference_interval(disagree_a, disagree_b)
    assert hi1 - lo1 < hi2 - lo2


def test_coverage_is_near_nominal():
    rng = random.Random(0)
    n, trials, covered_w, covered_d = 80, 1500, 0, 0
    p_base, p_gain = 0.6, 0.15  # base right w.p. 0.6; adapter flips a wrong base answer w.p. p_gain/(1-p_base)
    true_diff = p_gain
    for _ in range(trials):
        base = [rng.random() < p_base for _ in range(n)]
        adapter = [b or rng.random() < p_gain / (1 - p_base) for b in base]
        lo, hi = wilson_interval(sum(base), n)
        covered_w += lo <= p_base <= hi
        _, lo, hi = paired_difference_interval(adapter, base)
        covered_d += lo <= true_diff <= hi
    assert 0.93 <= covered_w / trials <= 0.975
    assert 0.93 <= covered_d / trials <= 0.975


def test_wilson_more_hand_values():
    assert wilson_interval(5, 10) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    low, high = wilson_interval(0, 20)
    assert low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0.1611, abs=1e-4)
