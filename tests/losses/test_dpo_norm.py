"""DPO on per-token mean log-ratios."""

import math

import pytest

from innerpo.losses.dpo_norm import DPONormLoss


def test_value(lt):
    # chosen ratio -6 - (-8) = 2 over 4 tokens → 0.5; rejected ratio -9 - (-6) = -3 over 2 tokens → -1.5
    # β = 1: z = 0.5 + 1.5 = 2 → L = log(1 + e^-2) = 0.1269280
    out = DPONormLoss(beta=1.0)(lt.pairs([-6.0], [-9.0], [-8.0], [-6.0], [4.0], [2.0]))
    lt.approx(out.loss, math.log1p(math.exp(-2)))
    lt.approx(out.metrics["margin_per_token"], 2.0)
    lt.approx(out.metrics["rewards/margins"], 5.0)  # β·(2 - (-3)), summed as TRL logs it


def test_descent_raises_per_token_margin(lt):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-10.0, -18.0], [-10.0, -16.0], [3.0, 8.0], [5.0, 2.0], grad=True)
    loss = DPONormLoss(beta=1.0)
    before, after, x2 = lt.step(loss, x, lr=1.0)
    assert after < before
    assert loss(x2).metrics["margin_per_token"] > loss(x).metrics["margin_per_token"]
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)


def test_finite_at_extremes(lt):
    lt.check_extremes(DPONormLoss(beta=1.0))


@pytest.mark.parametrize("beta", [-0.1, 0.0])
def test_refuses_bad_beta(beta):
    with pytest.raises(ValueError, match="--method.beta"):
        DPONormLoss(beta=beta)
