"""ORPO (odds ratio + NLL)."""

import math

import pytest

from innerpo.losses.orpo import ORPOLoss


def test_value(lt):
    # m_w = -2/2 = -1, m_l = -6/3 = -2; p = e^m
    # log OR = (-1 + 2) - [log(1 - e^-1) - log(1 - e^-2)] = 1 - (-0.4586751 + 0.1454135) = 1.3132617
    # L = NLL - λ·log σ(log OR) = 1 - 0.1·log σ(1.3132617)
    out = ORPOLoss(beta=0.1)(lt.pairs([-2.0], [-6.0], nc=[2.0], nr=[3.0]))
    log_odds = 1.0 - (math.log(1 - math.exp(-1)) - math.log(1 - math.exp(-2)))
    ratio = -math.log1p(math.exp(-log_odds))
    lt.approx(out.loss, 1.0 - 0.1 * ratio)
    lt.approx(out.metrics["log_odds_chosen"], log_odds)
    lt.approx(out.metrics["log_odds_chosen"], 1.3132617, tol=1e-6)
    lt.approx(out.metrics["log_odds_ratio"], ratio)
    lt.approx(out.metrics["nll_loss"], 1.0)
    lt.approx(out.metrics["rewards/chosen"], -0.1)  # λ·m_w


def test_descent_raises_log_odds_and_chosen(lt):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], nc=[3.0, 4.0], nr=[2.0, 3.0], grad=True)
    loss = ORPOLoss(beta=0.5)
    before, after, x2 = lt.step(loss, x, lr=0.5)
    assert after < before
    assert loss(x2).metrics["log_odds_chosen"] > loss(x).metrics["log_odds_chosen"]
    assert (x2.policy_chosen.sum > x.policy_chosen.sum).all()


def test_finite_at_extremes(lt):
    # includes mean log-probs of exactly 0 (p = 1), where log(1 − p) needs the clamp
    lt.check_extremes(ORPOLoss(beta=0.1))


@pytest.mark.parametrize("beta", [-0.1, 0.0, float("inf")])
def test_refuses_bad_beta(beta):
    with pytest.raises(ValueError, match="--method.beta"):
        ORPOLoss(beta=beta)
