"""SimPER (reference-free, no hyperparameters)."""

import math

import pytest

from innerpo.losses.simper import SimPERLoss


def test_value(lt):
    # m_w = -2/2 = -1, m_l = -6/3 = -2 → L = -e^-1 + e^-2 = -0.3678794 + 0.1353353 = -0.2325442
    out = SimPERLoss()(lt.pairs([-2.0], [-6.0], nc=[2.0], nr=[3.0]))
    lt.approx(out.loss, -math.exp(-1) + math.exp(-2))
    lt.approx(out.metrics["rewards/chosen"], math.exp(-1))
    lt.approx(out.metrics["logps/chosen"], -2.0)
    lt.approx(out.metrics["logps/chosen_mean"], -1.0)


def test_needs_no_reference(lt):
    assert SimPERLoss.needs_reference is False
    SimPERLoss()(lt.pairs([-2.0], [-6.0]))  # ref_* None is fine


def test_descent_raises_chosen_lowers_rejected(lt):
    x = lt.pairs([-3.0, -8.0], [-2.0, -9.0], nc=[3.0, 4.0], nr=[2.0, 3.0], grad=True)
    before, after, x2 = lt.step(SimPERLoss(), x, lr=1.0)
    assert after < before
    assert (x2.policy_chosen.sum > x.policy_chosen.sum).all()
    assert (x2.policy_rejected.sum < x.policy_rejected.sum).all()


def test_finite_at_extremes(lt):
    lt.check_extremes(SimPERLoss())


def test_has_no_hyperparameters_to_refuse():
    # SimPER has no β, margin or smoothing: nothing can be misconfigured, and none is accepted.
    with pytest.raises(TypeError):
        SimPERLoss(beta=0.1)
