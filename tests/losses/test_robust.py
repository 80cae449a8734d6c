"""Robust DPO."""

import math

import pytest

from innerpo.losses.robust import RobustDPOLoss


def test_value(lt):
    # β = 1, ratios 1 and 0 → z = 1; ε = 0.2
    # L = [-0.8·log σ(1) + 0.2·log σ(-1)] / 0.6
    #   = [0.8·0.31326169 - 0.2·1.31326169] / 0.6 = -0.0200717 (may be negative: the flipped
    #     term enters with a plus sign)
    x = lt.pairs([-4.0], [-5.0], [-5.0], [-5.0])
    out = RobustDPOLoss(beta=1.0, label_smoothing=0.2)(x)
    expected = (0.8 * math.log1p(math.exp(-1)) - 0.2 * math.log1p(math.exp(1))) / 0.6
    lt.approx(out.loss, expected)
    lt.approx(out.loss, -0.0200717, tol=1e-6)


def test_zero_smoothing_is_dpo(lt):
    # ε = 0: L = -log σ(1) = log(1 + e^-1) = 0.3132617
    out = RobustDPOLoss(beta=1.0, label_smoothing=0.0)(lt.pairs([-4.0], [-5.0], [-5.0], [-5.0]))
    lt.approx(out.loss, math.log1p(math.exp(-1)))


def test_descent_raises_margin(lt):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-10.0, -18.0], [-10.0, -16.0], grad=True)
    before, after, x2 = lt.step(RobustDPOLoss(beta=0.1, label_smoothing=0.3), x, lr=1.0)
    assert after < before
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)


def test_finite_at_extremes(lt):
    lt.check_extremes(RobustDPOLoss(beta=0.1, label_smoothing=0.2))


@pytest.mark.parametrize(
    "kw", [{"beta": -0.1}, {"label_smoothing": 0.5}, {"label_smoothing": 0.7}, {"label_smoothing": -0.01}]
)
def test_refuses_bad_hyperparameters(kw):
    with pytest.raises(ValueError, match="try --method"):
        RobustDPOLoss(**kw)
