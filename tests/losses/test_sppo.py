"""SPPO (hard labels)."""

import pytest

from innerpo.losses.sppo import SPPOLoss


def test_value(lt):
    # β = 0.25 → targets ±1/(2β) = ±2. ρ_w = -4 - (-5) = 1, ρ_l = -8 - (-5) = -3
    # L = (1 - 2)² + (-3 + 2)² = 2
    out = SPPOLoss(beta=0.25)(lt.pairs([-4.0], [-8.0], [-5.0], [-5.0]))
    lt.approx(out.loss, 2.0)
    lt.approx(out.metrics["rewards/chosen"], 0.25)
    lt.approx(out.metrics["rewards/rejected"], -0.75)


def test_descent_raises_margin(lt):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-10.0, -18.0], [-10.0, -16.0], grad=True)
    before, after, x2 = lt.step(SPPOLoss(beta=0.1), x, lr=0.1)
    assert after < before
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)


def test_finite_at_extremes(lt):
    lt.check_extremes(SPPOLoss(beta=0.1))


@pytest.mark.parametrize("beta", [-0.1, 0.0, float("nan")])
def test_refuses_bad_beta(beta):
    with pytest.raises(ValueError, match="--method.beta"):
        SPPOLoss(beta=beta)
