"""SFT: per-token mean NLL of the chosen completion, averaged over the batch."""

import pytest

from innerpo.losses.sft import SFTLoss


def test_value_is_mean_of_per_token_means(lt):
    # chosen: -2 over 2 tokens (1 nat/token), -9 over 3 tokens (3 nats/token)
    # L = mean(1, 3) = 2  (a token-level mean over the batch would give 11/5 = 2.2)
    out = SFTLoss()(lt.pairs([-2.0, -9.0], [-50.0, -1.0], nc=[2.0, 3.0], nr=[7.0, 1.0]))
    lt.approx(out.loss, 2.0)
    lt.approx(out.metrics["nll_loss"], 2.0)
    lt.approx(out.metrics["logps/chosen"], -5.5)


def test_ignores_rejected_and_reference(lt):
    assert SFTLoss.needs_reference is False
    x = lt.pairs([-2.0], [-6.0], nc=[2.0], nr=[3.0], grad=True)
    SFTLoss()(x).loss.backward()
    assert x.policy_rejected.sum.grad is None


def test_descent_raises_chosen_logp(lt):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], nc=[3.0, 4.0], nr=[2.0, 3.0], grad=True)
    before, after, x2 = lt.step(SFTLoss(), x, lr=1.0)
    assert after < before
    assert (x2.policy_chosen.sum > x.policy_chosen.sum).all()


def test_finite_at_extremes(lt):
    lt.check_extremes(SFTLoss())


def test_has_no_hyperparameters_to_refuse():
    # Its weight lives in --method.weights; the component itself takes no arguments.
    with pytest.raises(TypeError):
        SFTLoss(beta=0.1)
