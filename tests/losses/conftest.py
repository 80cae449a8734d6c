"""Shared helpers for the loss tests, handed to tests as fixtures.

* ``lt`` — builders and checks for every loss: ``lt.pairs(...)`` makes LossInputs from
  plain lists, ``lt.step(...)`` takes one gradient step on the policy log-probs,
  ``lt.check_extremes(loss)`` asserts finite values and gradients at extreme inputs.
* ``trl`` — calls into TRL 1.16's own trainer code on given log-probs (see
  test_trl_parity.py for which code path each loss goes through).
"""

from __future__ import annotations

import math
import types
import warnings
from collections import defaultdict

import pytest
import torch
from torch import nn

from innerpo.losses.base import LossInputs, PreferenceLoss, SeqLogps
from innerpo.losses.kto import KL_POLICY_KEY, KL_REF_KEY

F64 = torch.float64


# ---------------------------------------------------------------------------------------
# builders and checks


def _t(values, dtype=F64, grad=False):
    t = torch.tensor(values, dtype=dtype)
    return t.requires_grad_(grad)


def pairs(pc, pr, rc=None, rr=None, nc=None, nr=None, *, grad=False, dtype=F64, kl=True) -> LossInputs:
    """LossInputs from lists of summed log-probs (policy chosen/rejected, ref chosen/rejected).

    nc/nr: token counts (default 1). grad=True makes the policy sums leaf tensors.
    kl=True adds KTO's mismatched KL log-probs, TRL-style: the chosen completion of pair i−1
    scored under prompt i, standing in as the rolled chosen log-probs.
    """
    b = len(pc)
    nc = nc if nc is not None else [1.0] * b
    nr = nr if nr is not None else [1.0] * b
    x = LossInputs(
        policy_chosen=SeqLogps(_t(pc, dtype, grad), _t(nc, dtype)),
        policy_rejected=SeqLogps(_t(pr, dtype, grad), _t(nr, dtype)),
        ref_chosen=None if rc is None else SeqLogps(_t(rc, dtype), _t(nc, dtype)),
        ref_rejected=None if rr is None else SeqLogps(_t(rr, dtype), _t(nr, dtype)),
    )
    if kl and rc is not None:
        x.extra[KL_POLICY_KEY] = torch.roll(x.policy_chosen.sum.detach(), 1)
        x.extra[KL_REF_KEY] = torch.roll(x.ref_chosen.sum, 1)
    return x


def step(loss: PreferenceLoss, x: LossInputs, lr: float):
    """One gradient-descent step on the policy sums (leaf tensors) of x.

    Returns (loss before, loss after, x after); x after has the same refs, counts and extras.
    """
    pc, pr = x.policy_chosen.sum, x.policy_rejected.sum
    assert pc.is_leaf and pc.requires_grad and pr.is_leaf and pr.requires_grad
    out = loss(x)
    gc, gr = torch.autograd.grad(out.loss, [pc, pr], allow_unused=True)
    gc = torch.zeros_like(pc) if gc is None else gc
    gr = torch.zeros_like(pr) if gr is None else gr
    x2 = LossInputs(
        policy_chosen=SeqLogps((pc - lr * gc).detach(), x.policy_chosen.ntok),
        policy_rejected=SeqLogps((pr - lr * gr).detach(), x.policy_rejected.ntok),
        ref_chosen=x.ref_chosen,
        ref_rejected=x.ref_rejected,
        extra=dict(x.extra),
    )
    with torch.no_grad():
        after = loss(x2).loss
    return out.loss.detach(), after, x2


def margin(x: LossInputs) -> torch.Tensor:
    """Mean policy chosen-minus-rejected summed log-prob."""
    return (x.policy_chosen.sum - x.policy_rejected.sum).detach().mean()


def ratio_margin(x: LossInputs) -> torch.Tensor:
    """Mean log-ratio margin [(π_w − ref_w) − (π_l − ref_l)], summed log-probs."""
    return ((x.policy_chosen.sum - x.ref_chosen.sum) - (x.policy_rejected.sum - x.ref_rejected.sum)).detach().mean()


# Extreme batches (pc, pr, rc, rr, nc, nr): log-probs at/near 0, very negative, equal
# chosen and rejected, huge positive and huge negative margins, 1 and 200 tokens.
EXTREMES = {
    "all_zero": ([0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]),
    "near_zero": ([-1e-6, -1e-7], [-1e-6, -1e-7], [-1e-6, -1e-7], [-1e-6, -1e-7]),
    "very_negative": ([-1e4, -2e4], [-1e4, -2e4], [-1e4, -2e4], [-1e4, -2e4]),
    "equal_sides": ([-5.0, -30.0], [-5.0, -30.0], [-7.0, -25.0], [-7.0, -25.0]),
    "huge_positive_margin": ([-1e-6, 0.0], [-1e4, -2e4], [-1e4, -2e4], [-1e-6, 0.0]),
    "huge_negative_margin": ([-1e4, -2e4], [-1e-6, 0.0], [-1e-6, 0.0], [-1e4, -2e4]),
}


def check_extremes(loss: PreferenceLoss, dtype=torch.float32) -> None:
    """Loss, metrics and gradients finite on every extreme batch, for 1 and 200 tokens."""
    for name, (pc, pr, rc, rr) in EXTREMES.items():
        for n in (1.0, 200.0):
            x = pairs(pc, pr, rc, rr, [n, 1.0], [n, 200.0], grad=True, dtype=dtype)
            out = loss(x)
            where = f"{type(loss).__name__} on {name} (ntok {n})"
            assert out.loss.dim() == 0, where
            assert torch.isfinite(out.loss), f"{where}: loss {out.loss}"
            for k, v in out.metrics.items():
                assert torch.isfinite(v), f"{where}: metric {k} = {v}"
                assert not v.requires_grad, f"{where}: metric {k} is not detached"
            grads = torch.autograd.grad(out.loss, [x.policy_chosen.sum, x.policy_rejected.sum], allow_unused=True)
            for g in grads:
                assert g is None or torch.isfinite(g).all(), f"{where}: gradient {g}"


def approx(a, b, tol=1e-9):
    a = float(a)
    assert math.isclose(a, b, rel_tol=tol, abs_tol=tol), f"{a!r} != {b!r}"


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def logsigmoid(z: float) -> float:
    return -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))


@pytest.fixture
def lt():
    return types.SimpleNamespace(
        pairs=pairs,
        step=step,
        margin=margin,
        ratio_margin=ratio_margin,
        check_extremes=check_extremes,
        approx=approx,
        sigmoid=sigmoid,
        logsigmoid=logsigmoid,
        F64=F64,
    )


# ---------------------------------------------------------------------------------------
# TRL harness: TRL 1.16's own loss code on chosen log-probs.
#
# Each sequence gets a constant per-token log-prob d = sum/ntok on its completion tokens,
# so TRL's own reductions recover the summed (or mean) log-probs we pass innerpo.
# Rows are tokenised as [row id, prompt..., completion..., padding]; the fake models look
# rows up by their first token.


class _Accelerator:
    device = torch.device("cpu")

    @staticmethod
    def gather(t):
        return t

    gather_for_metrics = gather

    @staticmethod
    def unwrap_model(m):
        return m


class _PerTokenLM(nn.Module):
    """Stands in for a causal LM called with ``fused_lm_head=True`` (DPO/KTO trainers):
    returns per-token log-probs of the labels (0 where labels are -100)."""

    def __init__(self, per_token: dict[int, float]):
        super().__init__()
        self.per_token = per_token

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        vals = torch.tensor([self.per_token[int(i)] for i in input_ids[:, 0]], dtype=F64)
        mask = (labels[:, 1:] != -100).to(F64)
        log_probs = mask * vals[:, None]
        zeros = torch.zeros_like(log_probs)
        return types.SimpleNamespace(
            log_probs=log_probs, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool(), aux_loss=None
        )


class _LogitsLM(nn.Module):
    """Stands in for a causal LM returning logits (CPO/ORPO trainers): vocabulary {0, 1},
    every target token is 0, and the logits give token 0 log-prob d on completion
    positions (prompt positions: log-prob ≈ 0)."""

    def __init__(self, per_token: dict[int, float]):
        super().__init__()
        self.per_token = per_token

    def forward(self, input_ids, attention_mask=None, **kwargs):
        n, t = input_ids.shape
        logits = torch.zeros(n, t, 2, dtype=F64)
        for i in range(n):
            d = self.per_token[int(input_ids[i, 0])]
            # logit a with log σ(a) = d, i.e. a = d − log(1 − e^d)
            a = d - math.log(-math.expm1(d))
            logits[i, :, 0] = a
        return types.SimpleNamespace(logits=logits)


def _tokenise(sums, ntoks, prompt_len, first_id):
    """input ids, attention mask, completion mask and per-token table for rows of a batch."""
    rows = len(sums)
    width = 1 + prompt_len + int(max(ntoks))
    ids = torch.zeros(rows, width, dtype=torch.long)
    attn = torch.zeros(rows, width, dtype=torch.long)
    comp = torch.zeros(rows, width, dtype=torch.long)
    table = {}
    for i, (s, n) in enumerate(zip(sums, ntoks)):
        n = int(n)
        rid = first_id + i
        ids[i, 0] = rid
        attn[i, : 1 + prompt_len + n] = 1
        comp[i, 1 + prompt_len : 1 + prompt_len + n] = 1
        table[rid] = s / n
    return ids, attn, comp, table


def _blank_trainer(cls, **attrs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = object.__new__(cls)
    tr.accelerator = _Accelerator()
    tr._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    tr._total_train_tokens = 0
    tr._tp_size = 1
    tr.aux_loss_enabled = False
    for k, v in attrs.items():
        setattr(tr, k, v)
    return tr


def trl_dpo(loss_types, pc, pr, rc, rr, nc, nr, *, beta=0.1, label_smoothing=0.0, weights=None, discopop_tau=0.05):
    """DPOTrainer._compute_loss (TRL 1.16) with reference log-probs precomputed.

    TRL sums per-token log-probs itself (sum convention); ipo/sigmoid_norm divide by the
    completion-mask token count. Returns (loss, {metric: last value}).
    """
    from trl import DPOTrainer

    b = len(pc)
    ids, attn, comp, table = _tokenise(list(pc) + list(pr), list(nc) + list(nr), prompt_len=2, first_id=1)
    model = _PerTokenLM(table)
    tr = _blank_trainer(
        DPOTrainer,
        model=model,
        ref_model=None,
        beta=beta,
        label_smoothing=label_smoothing,
        loss_types=list(loss_types),
        loss_weights=list(weights) if weights is not None else [1.0] * len(loss_types),
        ld_alpha=None,
        f_divergence_type="reverse_kl",
        f_alpha_divergence_coef=1.0,
        use_weighting=False,
        precompute_ref_logps=True,
        args=types.SimpleNamespace(discopop_tau=discopop_tau, gradient_checkpointing_kwargs=None),
    )
    inputs = {
        "input_ids": ids,
        "attention_mask": attn,
        "completion_mask": comp,
        "ref_chosen_logps": torch.tensor(rc, dtype=F64),
        "ref_rejected_logps": torch.tensor(rr, dtype=F64),
    }
    assert ids.shape[0] == 2 * b
    loss = tr._compute_loss(model, inputs, return_outputs=False)
    return float(loss), {k: v[-1] for k, v in tr._metrics["train"].items()}


def _paired_logits_batch(pc, pr, nc, nr, prompt_len):
    cid, catt, ccomp, ctab = _tokenise(pc, nc, prompt_len, first_id=1)
    rid, ratt, rcomp, rtab = _tokenise(pr, nr, prompt_len, first_id=1 + len(pc))
    # all target tokens are 0 except each row's first token (its id, never a target)
    batch = {
        "chosen_input_ids": cid,
        "chosen_attention_mask": catt,
        "chosen_labels": torch.where(ccomp.bool(), torch.zeros_like(cid), torch.full_like(cid, -100)),
        "rejected_input_ids": rid,
        "rejected_attention_mask": ratt,
        "rejected_labels": torch.where(rcomp.bool(), torch.zeros_like(rid), torch.full_like(rid, -100)),
    }
    return batch, _LogitsLM({**ctab, **rtab})


def trl_cpo(loss_type, pc, pr, nc, nr, *, beta=0.1, label_smoothing=0.0, cpo_alpha=1.0, simpo_gamma=0.5):
    """CPOTrainer.get_batch_loss_metrics (TRL 1.16, trl.experimental.cpo) on a fake LM's logits.

    TRL's own concatenated_forward computes the log-probs: summed for ``sigmoid``, per-token
    mean for ``simpo``; its NLL is the cross-entropy over all chosen completion tokens.
    """
    from trl.experimental.cpo import CPOTrainer

    batch, model = _paired_logits_batch(pc, pr, nc, nr, prompt_len=2)
    tr = _blank_trainer(
        CPOTrainer,
        is_encoder_decoder=False,
        pad_token_id=0,
        beta=beta,
        label_smoothing=label_smoothing,
        loss_type=loss_type,
        cpo_alpha=cpo_alpha,
        simpo_gamma=simpo_gamma,
        alpha=0.0,
    )
    loss, metrics = tr.get_batch_loss_metrics(model, batch, train_eval="train")
    return float(loss), metrics


def trl_cpo_loss_fn(chosen, rejected, *, beta, label_smoothing):
    """CPOTrainer.cpo_loss (``sigmoid``) on given [B] tensors: TRL's cDPO-smoothed logistic loss."""
    from trl.experimental.cpo import CPOTrainer

    tr = _blank_trainer(CPOTrainer, beta=beta, label_smoothing=label_smoothing, loss_type="sigmoid", alpha=0.0)
    losses, cr, rr = tr.cpo_loss(torch.tensor(chosen, dtype=F64), torch.tensor(rejected, dtype=F64))
    return float(losses.mean()), cr, rr


def trl_orpo(pc, pr, nc, nr, *, beta=0.1):
    """ORPOTrainer.get_batch_loss_metrics (TRL 1.16, trl.experimental.orpo) on a fake LM's logits.

    A zero-length prompt (only the row-id token, never a target) makes TRL's NLL over
    "prompt + response" the NLL over the completion tokens; TRL's odds use per-token means.
    """
    from trl.experimental.orpo import ORPOTrainer

    batch, model = _paired_logits_batch(pc, pr, nc, nr, prompt_len=0)
    tr = _blank_trainer(ORPOTrainer, is_encoder_decoder=False, padding_value=0, beta=beta)
    loss, metrics = tr.get_batch_loss_metrics(model, batch, train_eval="train")
    return float(loss), metrics


def trl_kto(policy, ref, ntok, labels, kl_policy, kl_ref, *, beta=0.1, desirable_weight=1.0, undesirable_weight=1.0):
    """KTOTrainer._compute_loss (TRL 1.16, loss_type ``kto``) on an unpaired batch, with
    precomputed reference log-probs (``ref_logps``, ``ref_KL_logps``); the policy's KL
    log-probs come from the fake model, as in TRL. Sum convention."""
    from trl import KTOTrainer

    n = len(policy)
    ids, attn, comp, table = _tokenise(policy, ntok, prompt_len=2, first_id=1)
    kids, katt, kcomp, ktable = _tokenise(kl_policy, [1] * len(kl_policy), prompt_len=2, first_id=1 + n)
    model = _PerTokenLM({**table, **ktable})
    tr = _blank_trainer(
        KTOTrainer,
        model=model,
        ref_model=None,
        beta=beta,
        loss_type="kto",
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        calculate_KL=True,
        precompute_ref_logps=True,
        args=types.SimpleNamespace(gradient_checkpointing_kwargs=None),
    )
    batch = {
        "input_ids": ids,
        "attention_mask": attn,
        "completion_mask": comp,
        "KL_input_ids": kids,
        "KL_attention_mask": katt,
        "KL_completion_mask": kcomp,
        "label": torch.tensor(labels, dtype=torch.bool),
        "ref_logps": torch.tensor(ref, dtype=F64),
        "ref_KL_logps": torch.tensor(kl_ref, dtype=F64),
    }
    loss = tr._compute_loss(model, batch, return_outputs=False)
    return float(loss), {k: v[-1] for k, v in tr._metrics["train"].items()}


@pytest.fixture
def trl():
    pytest.importorskip("trl")
    return types.SimpleNamespace(
        dpo=trl_dpo, cpo=trl_cpo, cpo_loss=trl_cpo_loss_fn, orpo=trl_orpo, kto=trl_kto, blank_trainer=_blank_trainer
    )
