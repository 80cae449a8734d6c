"""AOT, paired and unpaired."""

import math

import pytest

from innerpo.losses.aot import AOTLoss

# pair 1: π_w -1, π_l -3, ref_w -2, ref_l -2;  pair 2: π_w -5, π_l -4, ref_w -1, ref_l -4
ARGS = ([-1.0, -5.0], [-3.0, -4.0], [-2.0, -1.0], [-2.0, -4.0])


def nls(z):  # -log σ(z)
    return math.log1p(math.exp(-z))


def test_paired_value(lt):
    # u = π_w - π_l = [2, -1] → sorted [-1, 2];  u_ref = [0, 3] → sorted [0, 3]
    # δ = [-1, -1] (pairing by index would give [2, -4]); β = 1, ε = 0 → L = -log σ(-1) = 1.3132617
    out = AOTLoss(beta=1.0)(lt.pairs(*ARGS))
    lt.approx(out.loss, nls(-1.0))
    lt.approx(out.metrics["aot_sorted_margin"], -1.0)


def test_unpaired_value(lt):
    # chosen ratios [1, -4] → sorted [-4, 1]; rejected ratios [-1, 0] → sorted [-1, 0]
    # δ = [-3, 1]; with ε = 0.1: L = mean(0.9·nls(δ) + 0.1·nls(-δ))
    out = AOTLoss(beta=1.0, label_smoothing=0.1, unpaired=True)(lt.pairs(*ARGS))
    exp = sum(0.9 * nls(d) + 0.1 * nls(-d) for d in (-3.0, 1.0)) / 2
    lt.approx(out.loss, exp)


@pytest.mark.parametrize("unpaired", [False, True])
def test_descent_raises_margin(lt, unpaired):
    x = lt.pairs([-10.0, -20.0, -12.0], [-10.0, -15.0, -13.0], [-10.0, -18.0, -11.0], [-10.0, -16.0, -14.0], grad=True)
    before, after, x2 = lt.step(AOTLoss(beta=0.1, unpaired=unpaired), x, lr=1.0)
    assert after < before
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)


@pytest.mark.parametrize("unpaired", [False, True])
def test_finite_at_extremes(lt, unpaired):
    lt.check_extremes(AOTLoss(beta=0.1, label_smoothing=0.1, unpaired=unpaired))


@pytest.mark.parametrize("kw", [{"beta": -0.1}, {"label_smoothing": 0.5}, {"label_smoothing": -0.1}])
def test_refuses_bad_hyperparameters(kw):
    with pytest.raises(ValueError, match="try --method"):
        AOTLoss(**kw)
