"""KTO on paired and unpaired data, both KL reference points."""

import math

import pytest
import torch

from innerpo.losses.base import SeqLogps
from innerpo.losses.kto import KL_POLICY_KEY, KL_REF_KEY, KTOLoss, check_kto_labels


def sig(z):
    return 1 / (1 + math.exp(-z))


# pairs: chosen ratios [-4 - (-5), -2 - (-5)] = [1, 3]; rejected ratios [-6 - (-5), -8 - (-7)] = [-1, -1]
PAIRED = ([-4.0, -2.0], [-6.0, -8.0], [-5.0, -5.0], [-5.0, -7.0])


def test_paired_batch_estimate_value(lt):
    # z0 = max(0, mean(1, 3, -1, -1)) = 0.5; β = 1
    # L = mean(1-σ(1-0.5), 1-σ(3-0.5), 1-σ(0.5+1), 1-σ(0.5+1))
    x = lt.pairs(*PAIRED, kl=False)
    out = KTOLoss(beta=1.0, kl_estimate="batch")(x)
    exp = (1 - sig(0.5) + 1 - sig(2.5) + 2 * (1 - sig(1.5))) / 4
    lt.approx(out.loss, exp)
    lt.approx(out.metrics["kl"], 0.5)
    lt.approx(out.metrics["rewards/chosen"], 2.0)
    lt.approx(out.metrics["rewards/rejected"], -1.0)
    lt.approx(out.metrics["rewards/margins"], 3.0)
    lt.approx(out.metrics["rewards/accuracies"], 1.0)
    lt.approx(out.metrics["logps/chosen"], -3.0)


def test_paired_mismatched_estimate_and_weights(lt):
    # KL sequences: policy [-3, -4], reference [-5, -5] → z0 = mean(2, 1) = 1.5
    # λ_D = 2, λ_U = 0.5: L = [2·(1-σ(1-1.5)) + 2·(1-σ(3-1.5)) + 0.5·2·(1-σ(1.5+1))] / 4
    x = lt.pairs(*PAIRED, kl=False)
    x.extra[KL_POLICY_KEY] = torch.tensor([-3.0, -4.0], dtype=torch.float64)
    x.extra[KL_REF_KEY] = torch.tensor([-5.0, -5.0], dtype=torch.float64)
    out = KTOLoss(beta=1.0, desirable_weight=2.0, undesirable_weight=0.5)(x)
    exp = (2 * (1 - sig(-0.5)) + 2 * (1 - sig(1.5)) + 0.5 * 2 * (1 - sig(2.5))) / 4
    lt.approx(out.loss, exp)
    lt.approx(out.metrics["kl"], 1.5)


def test_kl_estimate_is_clamped_at_zero(lt):
    x = lt.pairs(*PAIRED, kl=False)
    x.extra[KL_POLICY_KEY] = torch.tensor([-9.0, -9.0], dtype=torch.float64)
    x.extra[KL_REF_KEY] = torch.tensor([-5.0, -5.0], dtype=torch.float64)
    lt.approx(KTOLoss(beta=1.0)(x).metrics["kl"], 0.0)


def test_unpaired_value(lt):
    # ratios [-1 - (-2), -2 - (-2), -3 - (-1)] = [1, 0, -2], labels [T, F, T]
    # batch z0 = max(0, mean(1, 0, -2)) = 0; β = 1
    # L = mean(1-σ(1), 1-σ(0 - 0), 1-σ(-2)) = mean(0.2689414, 0.5, 0.8807971)
    loss = KTOLoss(beta=1.0, kl_estimate="batch")
    p = SeqLogps(torch.tensor([-1.0, -2.0, -3.0]), torch.ones(3))
    r = SeqLogps(torch.tensor([-2.0, -2.0, -1.0]), torch.ones(3))
    out = loss.forward_unpaired(p, r, torch.tensor([True, False, True]))
    lt.approx(out.loss, (1 - sig(1) + 0.5 + 1 - sig(-2)) / 3, tol=1e-6)
    lt.approx(out.metrics["rewards/chosen"], -0.5, tol=1e-6)
    lt.approx(out.metrics["rewards/rejected"], 0.0, tol=1e-6)
    assert "rewards/accuracies" not in out.metrics  # no pairs to compare


def test_unpaired_single_class_batch_is_allowed(lt):
    loss = KTOLoss(beta=1.0)
    p = SeqLogps(torch.tensor([-1.0, -2.0]), torch.ones(2))
    r = SeqLogps(torch.tensor([-2.0, -2.0]), torch.ones(2))
    out = loss.forward_unpaired(p, r, torch.tensor([True, True]), torch.tensor([-3.0]), torch.tensor([-3.0]))
    # z0 = 0: L = mean(1-σ(1), 1-σ(0))
    lt.approx(out.loss, (1 - sig(1) + 0.5) / 2, tol=1e-6)
    assert "rewards/rejected" not in out.metrics and "rewards/margins" not in out.metrics


@pytest.mark.parametrize("kl_estimate", ["mismatched", "batch"])
def test_descent_raises_chosen_and_lowers_rejected(lt, kl_estimate):
    x = lt.pairs([-10.0, -20.0], [-10.0, -15.0], [-10.0, -18.0], [-10.0, -16.0], grad=True)
    before, after, x2 = lt.step(KTOLoss(beta=0.1, kl_estimate=kl_estimate), x, lr=1.0)
    assert after < before
    assert (x2.policy_chosen.sum > x.policy_chosen.sum).all()
    assert (x2.policy_rejected.sum < x.policy_rejected.sum).all()


def test_unpaired_descent(lt):
    loss = KTOLoss(beta=0.1, kl_estimate="batch")
    pol = torch.tensor([-10.0, -20.0, -12.0, -8.0], requires_grad=True)
    ref = SeqLogps(torch.tensor([-11.0, -19.0, -12.0, -9.0]), torch.ones(4))
    labels = torch.tensor([True, False, True, False])
    out = loss.forward_unpaired(SeqLogps(pol, torch.ones(4)), ref, labels)
    (g,) = torch.autograd.grad(out.loss, [pol])
    assert (g[labels] < 0).all() and (g[~labels] > 0).all()  # descent raises desirable, lowers undesirable
    new = loss.forward_unpaired(SeqLogps((pol - g).detach(), torch.ones(4)), ref, labels)
    assert new.loss < out.loss


@pytest.mark.parametrize("kl_estimate", ["mismatched", "batch"])
def test_finite_at_extremes(lt, kl_estimate):
    lt.check_extremes(KTOLoss(beta=0.1, kl_estimate=kl_estimate))


@pytest.mark.parametrize(
    "kw, hint",
    [
        ({"beta": -0.1}, "--method.beta"),
        ({"desirable_weight": 0.0}, "--method.kto_desirable_weight"),
        ({"undesirable_weight": -1.0}, "--method.kto_undesirable_weight"),
        ({"kl_estimate": "mean"}, "--method.kto_kl_estimate"),
    ],
)
def test_refuses_bad_hyperparameters(kw, hint):
    with pytest.raises(ValueError, match=hint):
        KTOLoss(**kw)


def test_mismatched_without_kl_logps_says_what_to_do(lt):
    x = lt.pairs(*PAIRED, kl=False)
    with pytest.raises(ValueError, match=r"kl_policy_logps.*--method.kto_kl_estimate=batch"):
        KTOLoss(beta=0.1)(x)


@pytest.mark.parametrize("labels", [[True, True, True], [False, False], []])
def test_refuses_data_without_both_kinds(labels):
    with pytest.raises(ValueError, match="needs both"):
        check_kto_labels(labels)
    check_kto_labels([True, False, True])  # fine


def test_unpaired_refuses_bad_labels():
    loss = KTOLoss(beta=0.1, kl_estimate="batch")
    p = SeqLogps(torch.tensor([-1.0, -2.0]), torch.ones(2))
    with pytest.raises(ValueError, match="booleans"):
        loss.forward_unpaired(p, p, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"\[B\]"):
        loss.forward_unpaired(p, p, torch.tensor([True, False, True]))
