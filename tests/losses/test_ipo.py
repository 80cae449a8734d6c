"""IPO: both normalization conventions, direction, extremes, refusals."""

import pytest

from innerpo.losses.ipo import IPOLoss

# pair 1: chosen ratio -10 - (-12) = 2 over 5 tokens (0.4/token),
#         rejected ratio -9 - (-6) = -3 over 3 tokens (-1/token)
# pair 2: chosen ratio -4 - (-4) = 0 over 2 tokens, rejected ratio -8 - (-9) = 1 over 4 tokens (0.25/token)
ARGS = ([-10.0, -4.0], [-9.0, -8.0], [-12.0, -4.0], [-6.0, -9.0], [5.0, 2.0], [3.0, 4.0])


def test_value_normalized_is_default(lt):
    # β = 0.25 → target 1/(2β) = 2
    # h = [0.4 + 1, 0 - 0.25] = [1.4, -0.25] → L = mean((1.4-2)², (-0.25-2)²) = (0.36 + 5.0625)/2 = 2.71125
    out = IPOLoss(beta=0.25)(lt.pairs(*ARGS))
    lt.approx(out.loss, 2.71125)
    lt.approx(out.metrics["ipo_margin"], (1.4 - 0.25) / 2)
    # rewards stay β·(summed log-ratio), as TRL logs them: β·[2, 0] and β·[-3, 1]
    lt.approx(out.metrics["rewards/chosen"], 0.25)
    lt.approx(out.metrics["rewards/rejected"], -0.25)


def test_value_summed(lt):
    # h = [2 + 3, 0 - 1] = [5, -1] → L = mean((5-2)², (-1-2)²) = 9
    out = IPOLoss(beta=0.25, normalize=False)(lt.pairs(*ARGS))
    lt.approx(out.loss, 9.0)


@pytest.mark.parametrize("normalize", [True, False])
def test_descent_raises_margin(lt, normalize):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-10.0, -18.0], [-10.0, -16.0], [3.0, 4.0], [3.0, 5.0], grad=True)
    loss = IPOLoss(beta=0.1, normalize=normalize)
    before, after, x2 = lt.step(loss, x, lr=0.05)
    assert after < before
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)


@pytest.mark.parametrize("normalize", [True, False])
def test_finite_at_extremes(lt, normalize):
    lt.check_extremes(IPOLoss(beta=0.1, normalize=normalize))


@pytest.mark.parametrize("beta", [-0.1, 0.0, float("inf")])
def test_refuses_bad_beta(beta):
    with pytest.raises(ValueError, match="--method.beta"):
        IPOLoss(beta=beta)
