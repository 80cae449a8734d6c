"""Alignment via Optimal Transport (AOT), paired and unpaired."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from innerpo.losses.base import Beta, LabelSmoothing, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import check_label_smoothing, logratios


@dataclass
class AOTParams(Beta, LabelSmoothing):
    aot_unpaired: bool = False
    """AOT: sort chosen and rejected log-ratios separately (TRL `aot_unpaired`) instead of paired log-ratio differences."""  # noqa: E501


class AOTLoss(PreferenceLoss):
    """AOT (Melnyk et al. 2024, arXiv:2406.05882); TRL's ``aot`` and ``aot_unpaired``.

    Intuition: ask for first-order stochastic dominance of the chosen reward distribution
    over the rejected one; in one dimension the optimal transport plan matches sorted
    samples, so the loss compares order statistics across the batch instead of pairs.

    Paired (``unpaired=False``, TRL ``aot``): with per-pair log-ratio differences
    u_i = log π(y_w,i) − log π(y_l,i) and u_i^ref likewise for the reference (summed
    log-probs), sort each over the batch and set δ_(k) = u_(k) − u^ref_(k).
    Unpaired (``unpaired=True``, TRL ``aot_unpaired``): sort the chosen log-ratios
    ρ_w = log π(y_w) − log π_ref(y_w) and the rejected ones ρ_l separately and set
    δ_(k) = ρ_w,(k) − ρ_l,(k).
    Then, with cDPO smoothing ε,
        L = mean_k [−(1 − ε)·log σ(β·δ_(k)) − ε·log σ(−β·δ_(k))],
    whose descent raises every sorted margin δ_(k) (hence the mean margin).
    The loss depends on the whole batch (use batches of 8 or more), and sorting is
    differentiable almost everywhere.

    Args:
        beta: β > 0, typically 0.01–0.5.
        label_smoothing: ε in [0, 0.5).
        unpaired: the unpaired variant.
    Shapes: log-probs [B] each → scalar loss.
    """

    Params = AOTParams
    title = "AOT, distributional alignment via optimal transport (paired), arXiv:2406.05882"

    @classmethod
    def from_params(cls, p: AOTParams) -> "AOTLoss":
        return cls(beta=p.beta, label_smoothing=p.label_smoothing, unpaired=p.aot_unpaired)

    def __init__(self, beta: float = 0.1, label_smoothing: float = 0.0, unpaired: bool = False):
        super().__init__()
        name = "aot-unpaired" if unpaired else "aot"
        check_beta(beta, name)
        check_label_smoothing(label_smoothing, name)
        self.beta = beta
        self.label_smoothing = label_smoothing
        self.unpaired = unpaired

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "aot")
        if self.unpaired:
            delta = torch.sort(chosen_ratio, dim=0).values - torch.sort(rejected_ratio, dim=0).values
        else:
            ref_c, ref_r = x.ref_chosen, x.ref_rejected
            u = x.policy_chosen.sum - x.policy_rejected.sum
            u_ref = ref_c.sum - ref_r.sum
            delta = torch.sort(u, dim=0).values - torch.sort(u_ref, dim=0).values
        z = self.beta * delta
        eps = self.label_smoothing
        losses = -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)
        metrics = reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x)
        metrics["aot_sorted_margin"] = delta.detach().mean()
        return LossOutput(losses.mean(), metrics)
