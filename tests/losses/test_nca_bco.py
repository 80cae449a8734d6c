"""NCA and BCO (pairwise): both classify each side's implicit reward on its own."""

import math

import pytest

from innerpo.losses.bco import BCOLoss
from innerpo.losses.nca import NCALoss

# β = 1; chosen ratio -4 - (-5) = 1, rejected ratio -7 - (-5) = -2 → r_w = 1, r_l = -2
ARGS = ([-4.0], [-7.0], [-5.0], [-5.0])


def nll_sigmoid(z):  # -log σ(z) = log(1 + e^-z)
    return math.log1p(math.exp(-z))


def test_nca_value(lt):
    # L = -log σ(1) - ½ log σ(-1) - ½ log σ(2) = 0.3132617 + ½·1.3132617 + ½·0.1269280 = 1.0333566
    out = NCALoss(beta=1.0)(lt.pairs(*ARGS))
    lt.approx(out.loss, nll_sigmoid(1) + 0.5 * nll_sigmoid(-1) + 0.5 * nll_sigmoid(2))
    lt.approx(out.loss, 1.0333566, tol=1e-6)
    lt.approx(out.metrics["rewards/chosen"], 1.0)
    lt.approx(out.metrics["rewards/rejected"], -2.0)


def test_bco_value(lt):
    # L = -log σ(1) - log σ(2) = 0.3132617 + 0.1269280 = 0.4401897
    out = BCOLoss(beta=1.0)(lt.pairs(*ARGS))
    lt.approx(out.loss, nll_sigmoid(1) + nll_sigmoid(2))
    lt.approx(out.loss, 0.4401897, tol=1e-6)


@pytest.mark.parametrize("cls", [NCALoss, BCOLoss])
def test_descent_raises_chosen_and_margin(lt, cls):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-10.0, -18.0], [-10.0, -16.0], grad=True)
    before, after, x2 = lt.step(cls(beta=0.1), x, lr=1.0)
    assert after < before
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)
    assert (x2.policy_chosen.sum > x.policy_chosen.sum).all()  # both raise the chosen side itself


@pytest.mark.parametrize("cls", [NCALoss, BCOLoss])
def test_finite_at_extremes(lt, cls):
    lt.check_extremes(cls(beta=0.1))


@pytest.mark.parametrize("cls", [NCALoss, BCOLoss])
@pytest.mark.parametrize("beta", [-0.1, 0.0])
def test_refuses_bad_beta(cls, beta):
    with pytest.raises(ValueError, match="--method.beta"):
        cls(beta=beta)
