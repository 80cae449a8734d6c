"""DiscoPOP."""

import math

import pytest

from innerpo.losses.discopop import DiscoPOPLoss


def expected(z, tau):
    # L = (1 - σ(z/τ))·(-log σ(z)) + σ(z/τ)·exp(-z)
    m = 1 / (1 + math.exp(-z / tau))
    return (1 - m) * math.log1p(math.exp(-z)) + m * math.exp(-z)


def test_value(lt):
    # β = 1, τ = 0.05; pair 1: z = 1 (mostly exponential: σ(20) ≈ 1 → ≈ e^-1 = 0.3679)
    #                  pair 2: z = -0.1 (blend: σ(-2) = 0.1192)
    x = lt.pairs([-4.0, -5.1], [-5.0, -5.0], [-5.0, -5.0], [-5.0, -5.0])
    out = DiscoPOPLoss(beta=1.0, tau=0.05)(x)
    lt.approx(out.loss, (expected(1.0, 0.05) + expected(-0.1, 0.05)) / 2)


def test_descent_raises_margin_outside_the_bump(lt):
    # β = 0.1: pair 1 log-ratios 2 and 0 → z = 0.2; pair 2 log-ratios -2 and 1 → z = -0.3;
    # both outside the non-monotone band (-0.11, 0.08) of τ = 0.05
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-12.0, -18.0], [-10.0, -16.0], grad=True)
    loss = DiscoPOPLoss(beta=0.1)
    before, after, x2 = lt.step(loss, x, lr=1.0)
    assert after < before
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)
    for i in range(2):  # each pair's margin rises
        assert lt.ratio_margin(_row(x2, i)) > lt.ratio_margin(_row(x, i))


def test_descent_inside_the_bump_lowers_margin(lt):
    # documented non-monotonicity: at z = 0 the gradient is (1 - log 2)/(4τ) - 3/4 = 0.78 > 0
    x = lt.pairs([-10.0], [-10.0], [-10.0], [-10.0], grad=True)
    before, after, x2 = lt.step(DiscoPOPLoss(beta=1.0), x, lr=0.01)
    assert after < before
    assert lt.ratio_margin(x2) < lt.ratio_margin(x)


def _row(x, i):
    from innerpo.losses.base import LossInputs, SeqLogps

    pick = lambda s: SeqLogps(s.sum[i : i + 1], s.ntok[i : i + 1])  # noqa: E731
    return LossInputs(pick(x.policy_chosen), pick(x.policy_rejected), pick(x.ref_chosen), pick(x.ref_rejected))


def test_finite_at_extremes(lt):
    # TRL's m·exp(-z) is inf·0 = nan for z ≲ -88 (float32); this form stays finite.
    lt.check_extremes(DiscoPOPLoss(beta=0.1))
    lt.check_extremes(DiscoPOPLoss(beta=1.0, tau=0.5))


@pytest.mark.parametrize("kw", [{"beta": -0.1}, {"tau": 0.0}, {"tau": -0.05}, {"tau": float("nan")}])
def test_refuses_bad_hyperparameters(kw):
    with pytest.raises(ValueError, match="--method.beta|--method.discopop_tau=0.05"):
        DiscoPOPLoss(**kw)
