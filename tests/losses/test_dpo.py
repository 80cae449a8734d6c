"""DPO with cDPO label smoothing (the existing component): value, direction, extremes, refusals."""

import math

import pytest

from innerpo.losses.dpo import DPOLoss


def test_value_with_label_smoothing(lt):
    # log-ratios: chosen -4 - (-5) = 1, rejected -6 - (-5) = -1 → z = β·2 = 1 (β = 0.5)
    # ε = 0.1: L = -0.9·log σ(1) - 0.1·log σ(-1) = 0.9·0.3132617 + 0.1·1.3132617 = 0.4132617
    x = lt.pairs([-4.0], [-6.0], [-5.0], [-5.0])
    out = DPOLoss(beta=0.5, label_smoothing=0.1)(x)
    lt.approx(out.loss, 0.9 * math.log1p(math.exp(-1)) + 0.1 * math.log1p(math.exp(1)))
    lt.approx(out.metrics["rewards/chosen"], 0.5)
    lt.approx(out.metrics["rewards/rejected"], -0.5)
    lt.approx(out.metrics["rewards/margins"], 1.0)
    lt.approx(out.metrics["rewards/accuracies"], 1.0)
    lt.approx(out.metrics["logps/chosen"], -4.0)


def test_descent_raises_margin(lt):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-10.0, -18.0], [-10.0, -16.0], grad=True)
    loss = DPOLoss(beta=0.1)
    before, after, x2 = lt.step(loss, x, lr=1.0)
    assert after < before
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)


def test_finite_at_extremes(lt):
    lt.check_extremes(DPOLoss(beta=0.1, label_smoothing=0.1))


@pytest.mark.parametrize(
    "kw", [{"beta": -0.1}, {"beta": 0.0}, {"beta": float("nan")}, {"label_smoothing": 0.5}, {"label_smoothing": -0.1}]
)
def test_refuses_bad_hyperparameters(kw):
    with pytest.raises(ValueError, match="--method|label_smoothing"):
        DPOLoss(**kw)
