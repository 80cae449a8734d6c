"""EXO (pairwise)."""

import math

import pytest

from innerpo.losses.exo import EXOLoss


def test_value(lt):
    # β = 1, ratios 1 and 0 → z = 1; ε = 0.1
    # L = σ(1)·(log σ(1) - log 0.9) + σ(-1)·(log σ(-1) - log 0.1)
    #   = 0.7310586·(-0.3132617 + 0.1053605) + 0.2689414·(-1.3132617 + 2.3025851)
    #   = -0.1519881 + 0.2660702 = 0.1140821
    s1, sm1 = 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))
    expected = s1 * (math.log(s1) - math.log(0.9)) + sm1 * (math.log(sm1) - math.log(0.1))
    out = EXOLoss(beta=1.0, label_smoothing=0.1)(lt.pairs([-4.0], [-5.0], [-5.0], [-5.0]))
    lt.approx(out.loss, expected)
    lt.approx(out.loss, 0.1140821, tol=1e-6)


def test_minimum_at_target_margin(lt):
    # KL(q‖p) = 0 where σ(z) = 1 - ε, i.e. z = log((1-ε)/ε)
    eps = 0.1
    z = math.log((1 - eps) / eps)
    out = EXOLoss(beta=1.0, label_smoothing=eps)(lt.pairs([z], [0.0], [0.0], [0.0]))
    lt.approx(out.loss, 0.0, tol=1e-12)


def test_descent_raises_margin(lt):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-10.0, -18.0], [-10.0, -16.0], grad=True)
    before, after, x2 = lt.step(EXOLoss(beta=0.1, label_smoothing=1e-3), x, lr=1.0)
    assert after < before
    assert lt.ratio_margin(x2) > lt.ratio_margin(x)


def test_finite_at_extremes(lt):
    lt.check_extremes(EXOLoss(beta=0.1, label_smoothing=1e-3))


def test_refuses_zero_smoothing_with_hint():
    with pytest.raises(ValueError, match=r"try --method.label_smoothing=1e-3"):
        EXOLoss(beta=0.1, label_smoothing=0.0)


@pytest.mark.parametrize(
    "kw", [{"beta": -0.1, "label_smoothing": 1e-3}, {"label_smoothing": 0.5}, {"label_smoothing": -1e-3}]
)
def test_refuses_bad_hyperparameters(kw):
    with pytest.raises(ValueError, match="try --method"):
        EXOLoss(**kw)
