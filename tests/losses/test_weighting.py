"""WPO policy weighting and Mallows dispersion (innerpo.losses.weighting): values by hand,
direction of a step, TRL parity of the `exp` form with `use_weighting`, refusals."""

import math
import types

import pytest
import torch
from torch import nn

from innerpo.losses.dpo import DPOLoss
from innerpo.losses.weighting import mallows_dispersion, policy_weights

F64 = torch.float64


def weighted_pairs(lt, grad=False):
    """Two pairs; WPO sums (chosen, rejected) and reference entropy shares given by hand."""
    x = lt.pairs([-2.0, -4.0], [-3.0, -3.0], [-2.5, -3.5], [-2.5, -3.5], [2.0, 4.0], [1.0, 2.0], grad=grad)
    x.policy_chosen.wpo = torch.tensor([-1.0, -8.0], dtype=F64)  # per-token means -0.5, -2.0
    x.policy_rejected.wpo = torch.tensor([-0.5, -2.0], dtype=F64)  # -0.5, -1.0
    x.ref_chosen.entropy = torch.tensor([1.0, 0.4], dtype=F64)  # shares 0.5, 0.1
    x.ref_rejected.entropy = torch.tensor([0.3, 1.2], dtype=F64)  # shares 0.3, 0.6
    return x


def test_policy_weights_by_hand(lt):
    x = weighted_pairs(lt)
    # ℓ = mean_t chosen + mean_t rejected: -0.5 - 0.5 = -1, -2 - 1 = -3; σ(ℓ/3), normalised to mean 1
    s = [lt.sigmoid(-1.0 / 3), lt.sigmoid(-3.0 / 3)]
    mean = sum(s) / 2
    w = policy_weights(x)
    lt.approx(w[0], s[0] / (mean + 1e-6))
    lt.approx(w[1], s[1] / (mean + 1e-6))
    lt.approx(w.mean(), mean / (mean + 1e-6))  # averages to 1 (up to the 1e-6 guard)
    assert w[0] > w[1]  # the pair the policy finds more likely weighs more
    exp = policy_weights(x, form="exp")
    lt.approx(exp[0], math.exp(-1.0))
    lt.approx(exp[1], math.exp(-3.0))
    lt.approx(
        policy_weights(x, temperature=1.0)[0], lt.sigmoid(-1.0) / ((lt.sigmoid(-1.0) + lt.sigmoid(-3.0)) / 2 + 1e-6)
    )


def test_dpo_with_policy_weights_by_hand(lt):
    x = weighted_pairs(lt)
    # z = β·(log-ratio chosen − log-ratio rejected) = 0.1·(0.5 + 0.5), 0.1·(−0.5 − 0.5)
    losses = [-lt.logsigmoid(0.1), -lt.logsigmoid(-0.1)]
    s = [lt.sigmoid(-1.0 / 3), lt.sigmoid(-1.0)]
    w = [v / (sum(s) / 2 + 1e-6) for v in s]
    out = DPOLoss(beta=0.1, use_policy_weights=True)(x)
    lt.approx(out.loss, (w[0] * losses[0] + w[1] * losses[1]) / 2)
    lt.approx(out.metrics["weights/policy"], (w[0] + w[1]) / 2)
    lt.approx(out.metrics["rewards/margins"], 0.0)  # rewards are logged unweighted
    assert "weights/mallows" not in out.metrics


def test_mallows_by_hand(lt):
    x = weighted_pairs(lt)
    # H̄ = (0.5 + 0.3)/2 = 0.4 and (0.1 + 0.6)/2 = 0.35; φ = −0.29·log H̄
    phi = [-0.29 * math.log(0.4), -0.29 * math.log(0.35)]
    got = mallows_dispersion(x)
    lt.approx(got[0], phi[0])
    lt.approx(got[1], phi[1])
    out = DPOLoss(beta=0.1, use_mallows=True)(x)
    lt.approx(out.loss, (-lt.logsigmoid(phi[0] * 0.1) - lt.logsigmoid(-phi[1] * 0.1)) / 2)
    lt.approx(out.metrics["weights/mallows"], sum(phi) / 2)
    # both at once: z ← φ·z, then each pair's loss × w
    s = [lt.sigmoid(-1.0 / 3), lt.sigmoid(-1.0)]
    w = [v / (sum(s) / 2 + 1e-6) for v in s]
    both = DPOLoss(beta=0.1, use_mallows=True, use_policy_weights=True, mallows_dispersion_mean=0.5)(x)
    phi = [-0.5 * math.log(0.4), -0.5 * math.log(0.35)]
    lt.approx(both.loss, (w[0] * -lt.logsigmoid(phi[0] * 0.1) + w[1] * -lt.logsigmoid(-phi[1] * 0.1)) / 2)


def test_mallows_is_finite_for_a_certain_reference(lt):
    x = weighted_pairs(lt)
    x.ref_chosen.entropy = torch.zeros(2, dtype=F64)
    x.ref_rejected.entropy = torch.zeros(2, dtype=F64)
    lt.approx(mallows_dispersion(x)[0], -0.29 * math.log(1e-6))  # the 1e-6 floor, φ ≈ 4.0


def test_weighted_step_descends_and_moves_the_heavier_pair_more(lt):
    # equal pairs except for their WPO weights: the step on each is proportional to its weight
    def batch(pc, pr, grad=False):
        x = lt.pairs(pc, pr, [-3.0, -3.0], [-3.0, -3.0], [2.0, 2.0], [2.0, 2.0], grad=grad)
        x.policy_chosen.wpo = torch.tensor([-0.2, -4.0], dtype=F64)
        x.policy_rejected.wpo = torch.tensor([-0.2, -4.0], dtype=F64)
        return x

    x = batch([-3.0, -3.0], [-3.0, -3.0], grad=True)
    loss = DPOLoss(beta=0.5, use_policy_weights=True)
    out = loss(x)
    gc, gr = torch.autograd.grad(out.loss, [x.policy_chosen.sum, x.policy_rejected.sum])
    w = policy_weights(x)
    assert w[0] > 1 > w[1]
    lt.approx(gc[0] / gc[1], float(w[0] / w[1]))  # gradients scale with the weights
    assert gc[0] < gc[1] < 0 and gr[0] > gr[1] > 0  # both pairs step the right way, the likelier one further
    x2 = batch((x.policy_chosen.sum - gc).tolist(), (x.policy_rejected.sum - gr).tolist())
    assert loss(x2).loss < out.loss and lt.ratio_margin(x2) > lt.ratio_margin(x)


def test_missing_statistics_are_refused(lt):
    x = lt.pairs([-2.0], [-3.0], [-2.5], [-2.5])
    with pytest.raises(ValueError, match="WPO statistics"):
        DPOLoss(use_policy_weights=True)(x)
    with pytest.raises(ValueError, match="reference's per-token entropies"):
        DPOLoss(use_mallows=True)(x)
    with pytest.raises(ValueError, match="policy_weight_temperature"):
        DPOLoss(use_policy_weights=True, policy_weight_temperature=0.0)
    with pytest.raises(ValueError, match="mallows_dispersion_mean"):
        DPOLoss(use_mallows=True, mallows_dispersion_mean=-1.0)


def test_options_of_an_unused_weighting_are_refused():
    from innerpo.errors import ConfigError
    from innerpo.methods.build import build_method
    from innerpo.methods.config import MethodConfig

    build_method(MethodConfig(use_policy_weights=True, policy_weight_temperature=1.0))
    with pytest.raises(ConfigError, match=r"policy_weight_temperature=1\.0.*with --method.use_policy_weights"):
        build_method(MethodConfig(policy_weight_temperature=1.0))
    with pytest.raises(ConfigError, match=r"use_mallows=True.*does not read it"):
        build_method(MethodConfig(losses=["hinge"], use_mallows=True))
    with pytest.raises(ConfigError, match=r"use_mallows=True.*does not read it"):
        build_method(MethodConfig(losses=["simper"], use_mallows=True))  # SimPER has no logit to scale
    build_method(MethodConfig(losses=["simper"], use_policy_weights=True))
    build_method(MethodConfig(losses=["ipo"], use_policy_weights=True, use_mallows=True))
    with pytest.raises(ConfigError, match="mallows_dispersion_mean"):
        build_method(MethodConfig(mallows_dispersion_mean=0.5))


def test_the_loss_asks_for_the_statistics_it_reads():
    from innerpo.losses.combined import CombinedLoss

    c = CombinedLoss({"dpo": DPOLoss(use_policy_weights=True, use_mallows=True)}, [1.0])
    assert c.policy_stats == ("wpo",) and c.reference_stats == ("entropy",)
    assert CombinedLoss({"dpo": DPOLoss()}, [1.0]).policy_stats == ()


# ---------------------------------------------------------------------------------------
# TRL parity: DPOTrainer._compute_loss (TRL 1.16) with use_weighting=True. The stand-in
# model returns per-token log-probs d and log Σ_v π(v)² = q, constant over each row's
# completion tokens, so TRL's own reductions see mean_t (d − q) per row.


class _PerTokenLM(nn.Module):
    def __init__(self, logp: dict[int, float], logsq: dict[int, float]):
        super().__init__()
        self.logp, self.logsq = logp, logsq

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        rows = [int(i) for i in input_ids[:, 0]]
        mask = (labels[:, 1:] != -100).to(F64)
        lp = mask * torch.tensor([self.logp[r] for r in rows], dtype=F64)[:, None]
        lsq = mask * torch.tensor([self.logsq[r] for r in rows], dtype=F64)[:, None]
        zeros = torch.zeros_like(lp)
        return types.SimpleNamespace(
            log_probs=lp, log_sum_sq_probs=lsq, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool(), aux_loss=None
        )


def trl_weighted_dpo(blank_trainer, pc, pr, rc, rr, nc, nr, qc, qr, beta, loss_type="sigmoid"):
    """TRL's DPO (`sigmoid`) with `use_weighting`; q*: per-token log Σ π² of each row."""
    trl = pytest.importorskip("trl")
    rows = list(pc) + list(pr)
    ntok = list(nc) + list(nr)
    logsq = list(qc) + list(qr)
    width = 1 + 2 + int(max(ntok))
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    attn = torch.zeros_like(ids)
    comp = torch.zeros_like(ids)
    logp, lsq = {}, {}
    for i, (s, n, q) in enumerate(zip(rows, ntok, logsq)):
        ids[i, 0] = i + 1
        attn[i, : 3 + int(n)] = 1
        comp[i, 3 : 3 + int(n)] = 1
        logp[i + 1], lsq[i + 1] = s / n, q
    model = _PerTokenLM(logp, lsq)
    tr = blank_trainer(
        trl.DPOTrainer,
        model=model,
        ref_model=None,
        beta=beta,
        label_smoothing=0.0,
        loss_types=[loss_type],
        loss_weights=[1.0],
        ld_alpha=None,
        f_divergence_type="reverse_kl",
        f_alpha_divergence_coef=1.0,
        use_weighting=True,
        precompute_ref_logps=True,
        args=types.SimpleNamespace(discopop_tau=0.05, gradient_checkpointing_kwargs=None),
    )
    inputs = {
        "input_ids": ids,
        "attention_mask": attn,
        "completion_mask": comp,
        "ref_chosen_logps": torch.tensor(rc, dtype=F64),
        "ref_rejected_logps": torch.tensor(rr, dtype=F64),
    }
    return float(tr._compute_loss(model, inputs, return_outputs=False))


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
@pytest.mark.parametrize("beta", [0.1, 0.7])
def test_exp_form_matches_trl_use_weighting(lt, trl, beta, loss_type):
    from innerpo.losses.ipo import IPOLoss
    from innerpo.losses.weighting import PolicyWeights

    pc, pr, rc, rr = (
        [-12.3, -40.1, -7.7, -25.0],
        [-15.9, -33.4, -11.2, -25.0],
        [-13.0, -38.0, -9.1, -24.2],
        [-14.1, -35.5, -10.0, -26.3],
    )
    nc, nr = [4, 9, 3, 6], [5, 7, 8, 2]
    qc, qr = [-1.2, -0.4, -2.5, -0.9], [-0.7, -1.9, -0.3, -1.1]  # per-token log Σ π²
    x = lt.pairs(pc, pr, rc, rr, nc, nr)
    # innerpo's per-row WPO sum: Σ_t (log π(y_t) − log Σ π²) = sum − ntok·q
    x.policy_chosen.wpo = torch.tensor([s - n * q for s, n, q in zip(pc, nc, qc)], dtype=F64)
    x.policy_rejected.wpo = torch.tensor([s - n * q for s, n, q in zip(pr, nr, qr)], dtype=F64)
    make = {
        "sigmoid": lambda form: DPOLoss(beta=beta, use_policy_weights=True, policy_weight_form=form),
        "ipo": lambda form: IPOLoss(beta=beta, wpo=PolicyWeights(True, 3.0, form)),
    }[loss_type]
    ours = make("exp")(x)
    theirs = trl_weighted_dpo(trl.blank_trainer, pc, pr, rc, rr, nc, nr, qc, qr, beta, loss_type)
    assert math.isclose(float(ours.loss), theirs, abs_tol=1e-5), (float(ours.loss), theirs)
    # the research code's default form differs from TRL's (σ(ℓ/3), normalised): not equal
    default = make("sigmoid")(x)
    assert abs(float(default.loss) - theirs) > 1e-3


def test_ipo_and_simper_weights_by_hand(lt):
    from innerpo.losses.ipo import IPOLoss
    from innerpo.losses.simper import SimPERLoss
    from innerpo.losses.weighting import Mallows, PolicyWeights

    x = weighted_pairs(lt)
    s = [lt.sigmoid(-1.0 / 3), lt.sigmoid(-1.0)]
    w = [v / (sum(s) / 2 + 1e-6) for v in s]
    phi = [-0.29 * math.log(0.4), -0.29 * math.log(0.35)]
    # IPO (normalised): h = per-token log-ratio margins: 0.5/2 − (−0.5)/1 = 0.75, −0.5/4 − 0.5/2 = −0.375
    h = [0.75, -0.375]
    out = IPOLoss(beta=0.5, wpo=PolicyWeights(True), mallows=Mallows(True))(x)
    lt.approx(out.loss, (w[0] * (phi[0] * h[0] - 1.0) ** 2 + w[1] * (phi[1] * h[1] - 1.0) ** 2) / 2)
    # SimPER: −exp(m_w) + exp(m_l) per pair, × w
    m = [(-1.0, -3.0), (-1.0, -1.5)]
    per = [-math.exp(a) + math.exp(b) for a, b in m]
    out = SimPERLoss(use_policy_weights=True)(x)
    lt.approx(out.loss, (w[0] * per[0] + w[1] * per[1]) / 2)
    lt.approx(out.metrics["weights/policy"], (w[0] + w[1]) / 2)
