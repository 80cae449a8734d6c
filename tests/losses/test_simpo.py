"""SimPO: both margin conventions."""

import math

import pytest

from innerpo.losses.simpo import SimPOLoss
from innerpo.methods.build import build_loss
from innerpo.methods.config import MethodConfig

# m_w = -2/2 = -1, m_l = -6/3 = -2
ARGS = dict(pc=[-2.0], pr=[-6.0], nc=[2.0], nr=[3.0])


def test_value_absolute_gamma(lt):
    # β = 2, γ = 0.5: z = 2·(-1 + 2) - 0.5 = 1.5 → L = log(1 + e^-1.5) = 0.2014133
    out = SimPOLoss(beta=2.0, gamma=0.5)(lt.pairs(**ARGS))
    lt.approx(out.loss, math.log1p(math.exp(-1.5)))
    lt.approx(out.metrics["rewards/chosen"], -2.0)  # β·m_w
    lt.approx(out.metrics["rewards/rejected"], -4.0)
    lt.approx(out.metrics["logps/chosen"], -2.0)  # summed
    lt.approx(out.metrics["logps/chosen_mean"], -1.0)


def test_value_gamma_beta_ratio(lt):
    # γ/β = 0.25 with β = 2 → γ = 0.5, same as above; simpo_gamma is then ignored
    out = SimPOLoss(beta=2.0, gamma=123.0, gamma_beta_ratio=0.25)(lt.pairs(**ARGS))
    lt.approx(out.loss, math.log1p(math.exp(-1.5)))


def test_value_with_smoothing(lt):
    # ε = 0.1: L = 0.9·log(1 + e^-1.5) + 0.1·log(1 + e^1.5)
    out = SimPOLoss(beta=2.0, gamma=0.5, label_smoothing=0.1)(lt.pairs(**ARGS))
    lt.approx(out.loss, 0.9 * math.log1p(math.exp(-1.5)) + 0.1 * math.log1p(math.exp(1.5)))


def test_registry_reads_both_conventions():
    a = build_loss("simpo", MethodConfig(beta=2.0, simpo_gamma=1.0))
    b = build_loss("simpo", MethodConfig(beta=2.0, simpo_gamma=1.0, simpo_gamma_beta_ratio=0.25))
    assert a.gamma == 1.0 and b.gamma == 0.5


def test_descent_raises_normalized_margin(lt):
    x = lt.pairs([-3.0, -8.0], [-2.0, -9.0], nc=[3.0, 4.0], nr=[2.0, 3.0], grad=True)
    before, after, x2 = lt.step(SimPOLoss(beta=2.0, gamma=0.5), x, lr=0.5)
    assert after < before
    mean_margin = lambda x: (x.policy_chosen.mean - x.policy_rejected.mean).mean()  # noqa: E731
    assert mean_margin(x2) > mean_margin(x)


def test_finite_at_extremes(lt):
    lt.check_extremes(SimPOLoss(beta=2.5, gamma=1.0, label_smoothing=0.1))


@pytest.mark.parametrize(
    "kw, hint",
    [
        ({"beta": -2.0}, "--method.beta"),
        ({"gamma": -0.5}, "--method.simpo_gamma=0.5"),
        ({"gamma_beta_ratio": -0.5}, "--method.simpo_gamma_beta_ratio=0.5"),
        ({"label_smoothing": 0.5}, "--method.label_smoothing"),
    ],
)
def test_refuses_bad_hyperparameters(kw, hint):
    with pytest.raises(ValueError, match=hint):
        SimPOLoss(**kw)
