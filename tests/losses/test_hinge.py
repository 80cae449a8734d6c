"""SLiC / RSO hinge."""

import pytest

from innerpo.losses.hinge import HingeLoss


def test_value(lt):
    # β = 0.5. pair 1: ratios 1 and 0 → z = 0.5 → max(0, 0.5) = 0.5
    #          pair 2: ratios 3 and -1 → z = 2 → max(0, -1) = 0.   mean 0.25
    x = lt.pairs([-4.0, -2.0], [-5.0, -6.0], [-5.0, -5.0], [-5.0, -5.0])
    out = HingeLoss(beta=0.5)(x)
    lt.approx(out.loss, 0.25)
    lt.approx(out.metrics["rewards/margins"], 0.5 * (1 + 4) / 2)


def test_descent_raises_margin(lt):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-10.0, -18.0], [-10.0, -16.0], grad=True)
    before, after, x2 = lt.step(HingeLoss(beta=0.1), x, lr=1.0)
    assert after < before
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)


def test_finite_at_extremes(lt):
    lt.check_extremes(HingeLoss(beta=0.1))


@pytest.mark.parametrize("beta", [-1.0, 0.0])
def test_refuses_bad_beta(beta):
    with pytest.raises(ValueError, match="--method.beta"):
        HingeLoss(beta=beta)
