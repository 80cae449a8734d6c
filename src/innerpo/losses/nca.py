"""Noise Contrastive Alignment (NCA), pairwise form."""

from __future__ import annotations

import torch.nn.functional as F

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import logratios


class NCALoss(PreferenceLoss):
    """NCA for pairwise preferences (Chen et al. 2024, arXiv:2402.05369); TRL's ``nca_pair``.

    Intuition: classify each response's absolute implicit reward rather than only the
    difference, so the chosen likelihood is pushed up instead of both sides drifting down
    (DPO's common failure).

    With r_w = β·(log π(y_w|x) − log π_ref(y_w|x)) and r_l likewise (summed log-probs),
        L = −log σ(r_w) − ½·log σ(−r_w) − ½·log σ(−r_l).
    Descending it raises r_w (while r_w < log 2) and lowers r_l, so the margin r_w − r_l
    rises.

    Args:
        beta: β > 0, typically 0.01–0.5.
    Shapes: log-probs [B] each → scalar loss (mean over the batch).
    """

    Params = Beta
    title = "NCA, noise-contrastive alignment on pairs, arXiv:2402.05369"

    def __init__(self, beta: float = 0.1):
        super().__init__()
        check_beta(beta, "nca")
        self.beta = beta

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "nca")
        r_w, r_l = self.beta * chosen_ratio, self.beta * rejected_ratio
        losses = -F.logsigmoid(r_w) - 0.5 * F.logsigmoid(-r_w) - 0.5 * F.logsigmoid(-r_l)
        return LossOutput(losses.mean(), reward_metrics(r_w, r_l, x))
