"""APO: apo-zero and apo-down."""

import math

import pytest

from innerpo.losses.apo import APOLoss


def sig(z):
    return 1 / (1 + math.exp(-z))


# β = 1; r_w = -4 - (-5) = 1, r_l = -7 - (-5) = -2
ARGS = ([-4.0], [-7.0], [-5.0], [-5.0])


def test_zero_value(lt):
    # L = 1 - σ(1) + σ(-2) = 0.2689414 + 0.1192029 = 0.3881443
    out = APOLoss(beta=1.0, mode="zero")(lt.pairs(*ARGS))
    lt.approx(out.loss, 1 - sig(1) + sig(-2))
    lt.approx(out.loss, 0.3881443, tol=1e-6)


def test_down_value(lt):
    # L = σ(1) + 1 - σ(1 - (-2)) = 0.7310586 + 1 - 0.9525741 = 0.7784845
    out = APOLoss(beta=1.0, mode="down")(lt.pairs(*ARGS))
    lt.approx(out.loss, sig(1) + 1 - sig(3))
    lt.approx(out.loss, 0.7784845, tol=1e-6)


def test_zero_descent_raises_chosen_lowers_rejected(lt):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-10.0, -18.0], [-10.0, -16.0], grad=True)
    before, after, x2 = lt.step(APOLoss(beta=0.1, mode="zero"), x, lr=1.0)
    assert after < before
    assert (x2.policy_chosen.sum > x.policy_chosen.sum).all()
    assert (x2.policy_rejected.sum < x.policy_rejected.sum).all()
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)


def test_down_descent_lowers_both_rejected_more(lt):
    # β = 1, r_w = 0.5, r_l = -1: dL/dr_w = σ'(0.5) - σ'(1.5) = 0.2350 - 0.1491 > 0 and
    # dL/dr_l = σ'(1.5) = 0.1491 > dL/dr_w: the chosen side goes down, the rejected one faster.
    x = lt.pairs([-9.5, -19.5], [-11.0, -21.0], [-10.0, -20.0], [-10.0, -20.0], grad=True)
    before, after, x2 = lt.step(APOLoss(beta=1.0, mode="down"), x, lr=0.5)
    assert after < before
    dc = x2.policy_chosen.sum - x.policy_chosen.sum
    dr = x2.policy_rejected.sum - x.policy_rejected.sum
    assert (dc < 0).all() and (dr < dc).all()
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)


@pytest.mark.parametrize("mode", ["zero", "down"])
def test_finite_at_extremes(lt, mode):
    lt.check_extremes(APOLoss(beta=0.1, mode=mode))


@pytest.mark.parametrize("kw", [{"beta": -0.1}, {"beta": 0.0}, {"mode": "up"}])
def test_refuses_bad_hyperparameters(kw):
    with pytest.raises(ValueError, match="--method.beta|apo-zero or apo-down"):
        APOLoss(**kw)
