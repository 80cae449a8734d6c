"""Contrastive Preference Optimization (CPO)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from innerpo.losses.base import Beta, LabelSmoothing, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import check_label_smoothing, check_nonneg
from innerpo.losses.sft import chosen_nll


@dataclass
class CPOParams(Beta, LabelSmoothing):
    cpo_alpha: float = 1.0
    """CPO weight >= 0 of the NLL term on chosen completions (TRL default 1.0)."""


class CPOLoss(PreferenceLoss):
    """CPO (Xu et al. 2024, arXiv:2401.08417, Eq. 3 + NLL); TRL's CPOTrainer with
    ``loss_type="sigmoid"``.

    Intuition: DPO with the reference model dropped (a uniform-reference approximation,
    so no reference forward), plus an NLL term that keeps the chosen completions likely.

    With summed completion log-probs,
        z = β·[log π(y_w|x) − log π(y_l|x)],
        L = mean_B[−(1 − ε)·log σ(z) − ε·log σ(−z)] + α·NLL,
    NLL being the mean over the batch of each chosen completion's per-token mean NLL (see
    ``sft``; TRL averages over all chosen tokens instead, equal for equal lengths).
    Descending it raises the margin log π(y_w|x) − log π(y_l|x) and log π(y_w|x).

    Args:
        beta: β > 0, typically 0.01–0.5 (TRL default 0.1).
        label_smoothing: ε in [0, 0.5).
        alpha: α ≥ 0, weight of the NLL term (TRL ``cpo_alpha``, default 1.0).
    Shapes: log-probs [B] each (+ ntok [B]) → scalar loss.
    Reference-free (``needs_reference = False``).
    Metrics: rewards/* = β·(summed policy log-probs) as TRL, logps/*, ``nll_loss``.
    """

    needs_reference = False

    Params = CPOParams
    title = "CPO, reference-free preference loss plus NLL on chosen, arXiv:2401.08417"

    @classmethod
    def from_params(cls, p: CPOParams) -> "CPOLoss":
        return cls(beta=p.beta, label_smoothing=p.label_smoothing, alpha=p.cpo_alpha)

    def __init__(self, beta: float = 0.1, label_smoothing: float = 0.0, alpha: float = 1.0):
        super().__init__()
        check_beta(beta, "cpo")
        check_label_smoothing(label_smoothing, "cpo")
        check_nonneg(alpha, "cpo", "cpo_alpha", "1.0")
        self.beta = beta
        self.label_smoothing = label_smoothing
        self.alpha = alpha

    def forward(self, x: LossInputs) -> LossOutput:
        logp_w, logp_l = x.policy_chosen.sum, x.policy_rejected.sum
        z = self.beta * (logp_w - logp_l)
        eps = self.label_smoothing
        pref = (-(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)).mean()
        nll = chosen_nll(x)
        loss = pref + self.alpha * nll
        metrics = reward_metrics(self.beta * logp_w, self.beta * logp_l, x)
        metrics["nll_loss"] = nll.detach()
        return LossOutput(loss, metrics)
