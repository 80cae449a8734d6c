"""Calibration figures on toys whose values are worked out by hand."""

import math
import random

import numpy as np
import pytest

from innerpo.eval.calibration import (
    brier_score,
    calibration,
    chosen_probability,
    genies_rms_calibration_error,
    rms_calibration_error,
)

# Two bins of 10 pairs. Bin [0.9, 1.0]: confidence 0.95, 8 of 10 right (p = 0.95; the two
# wrong ones p = 0.05). Bin [0.6, 0.7): confidence 0.65, 6 of 10 right (p = 0.65 / 0.35).
TOY = [0.95] * 8 + [0.05] * 2 + [0.65] * 6 + [0.35] * 4


def test_known_probability_toy_by_hand():
    # mean p = (8·0.95 + 2·0.05 + 6·0.65 + 4·0.35) / 20 = (7.6 + 0.1 + 3.9 + 1.4) / 20 = 0.65
    # Brier = (8·0.05² + 2·0.95² + 6·0.35² + 4·0.65²) / 20 = (0.02 + 1.805 + 0.735 + 1.69) / 20 = 0.2125
    # RMSCE = √(½·(0.8 − 0.95)² + ½·(0.6 − 0.65)²) = √(½·0.0225 + ½·0.0025) = √0.0125
    figures = calibration(TOY)
    assert figures["p_chosen"] == pytest.approx(0.65)
    assert figures["brier"] == pytest.approx(0.2125)
    assert figures["rms_calibration_error"] == pytest.approx(math.sqrt(0.0125))
    assert brier_score(TOY) == figures["brier"] and rms_calibration_error(TOY) == figures["rms_calibration_error"]


def test_bins_weigh_by_pairs_and_a_calibrated_model_scores_zero():
    assert rms_calibration_error([0.75, 0.75, 0.75, 0.25]) == pytest.approx(0.0)  # 3 of 4 right at 0.75
    # 3 pairs at 0.95 all right (gap 0.05), 1 pair at 0.55 wrong (p = 0.45, gap 0.55): √(¾·0.0025 + ¼·0.3025)
    assert rms_calibration_error([0.95, 0.95, 0.95, 0.45]) == pytest.approx(math.sqrt(0.75 * 0.0025 + 0.25 * 0.3025))
    # a confidence of exactly 1 lands in the last bin; a tie (p = ½) is wrong, as in accuracy
    assert rms_calibration_error([1.0, 1.0]) == 0.0
    assert rms_calibration_error([0.5]) == pytest.approx(0.5)
    assert math.isnan(rms_calibration_error([])) and math.isnan(brier_score([]))


def test_probability_is_the_softmax_over_the_mean_scores_accuracy_compares():
    chosen, rejected = np.array([-1.0, -2.0, -3.0, -800.0]), np.array([-2.0, -1.0, -3.0, -1.0])
    p = chosen_probability(chosen, rejected)
    expected = np.exp(chosen) / (np.exp(chosen) + np.exp(rejected))
    assert p[:3] == pytest.approx(expected[:3])
    assert p[3] == 0.0 and np.isfinite(p).all()  # no overflow far out
    assert list(p > 0.5) == list(chosen > rejected)  # p > ½ exactly on the pairs accuracy counts right


def test_the_genies_variant_follows_its_code_and_differs_from_the_standard_one():
    # A model certain and right on every pair is perfectly calibrated: 0 by the standard definition.
    p = np.ones(100)
    assert rms_calibration_error(p) == 0.0
    # GENIES orients each pair by a coin (seed 42): oriented probability 1 (coin 1) falls outside its
    # last bin, 0 (coin 0) in the first, and that bin is compared with the mean of all coins.
    coin = random.Random(42)
    coins = np.array([coin.choice([0, 1]) for _ in range(100)])
    assert genies_rms_calibration_error(p) == pytest.approx(coins.mean())
    assert 0.3 < genies_rms_calibration_error(p) < 0.7
    assert math.isnan(genies_rms_calibration_error(TOY))  # 20 pairs: no bin holds 20
    random.seed(1)
    expected = random.random()
    random.seed(1)
    genies_rms_calibration_error(p)
    assert random.random() == expected  # the global random state is left alone
