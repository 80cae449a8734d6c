"""Robust DPO for noisy preference labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from innerpo.losses.base import Beta, LabelSmoothing, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import check_label_smoothing, logratios


@dataclass
class RobustParams(Beta, LabelSmoothing):
    """Robust DPO's options: β and the assumed label-flip rate ε."""


class RobustDPOLoss(PreferenceLoss):
    """Robust DPO (Chowdhury et al. 2024, arXiv:2403.00409); TRL's ``robust``.

    Intuition: if each label is flipped with known probability ε, an unbiased estimate of
    the clean DPO loss is a reweighted difference of the loss on the given label and on the
    flipped one.

    With z = β·[(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))]
    (summed completion log-probs), the loss per pair is
        L = [−(1 − ε)·log σ(z) + ε·log σ(−z)] / (1 − 2ε).
    Unlike cDPO (``dpo`` with label_smoothing) the flipped term enters with a plus sign, so
    the per-pair loss is unbounded below; its gradient still raises z for ε < 0.5.
    ε = 0 gives plain DPO.

    Args:
        beta: β > 0, typically 0.01–0.5.
        label_smoothing: ε in [0, 0.5), the assumed label-flip rate, typically 0.05–0.3.
    Shapes: log-probs [B] each → scalar loss (mean over the batch).
    """

    Params = RobustParams
    title = "Robust DPO for noisy labels (assumed flip rate ε=0.1), arXiv:2403.00409"
    preset = {"label_smoothing": 0.1}

    def __init__(self, beta: float = 0.1, label_smoothing: float = 0.0):
        super().__init__()
        check_beta(beta, "robust")
        check_label_smoothing(label_smoothing, "robust")
        self.beta = beta
        self.label_smoothing = label_smoothing

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "robust")
        z = self.beta * (chosen_ratio - rejected_ratio)
        eps = self.label_smoothing
        losses = (-(1 - eps) * F.logsigmoid(z) + eps * F.logsigmoid(-z)) / (1 - 2 * eps)
        return LossOutput(losses.mean(), reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x))
