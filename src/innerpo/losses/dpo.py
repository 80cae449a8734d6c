"""Direct Preference Optimization, with conservative label smoothing (cDPO)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from innerpo.losses.base import (
    Beta,
    LabelSmoothing,
    LossInputs,
    LossOutput,
    PreferenceLoss,
    check_beta,
    require_reference,
    reward_metrics,
)
from innerpo.losses.common import check_label_smoothing


@dataclass
class DPOParams(Beta, LabelSmoothing):
    """DPO's options: β and the cDPO label smoothing ε."""


class DPOLoss(PreferenceLoss):
    """DPO (Rafailov et al. 2023, arXiv:2305.18290); cDPO smoothing (Mitchell 2023).

    Intuition: raise the policy's log-likelihood ratio (against the frozen reference) of
    the chosen completion above that of the rejected one.

    With summed completion log-probs, the implicit margin is
        z = β · [(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))]
    and the loss per pair is
        L = −(1 − ε) · log σ(z) − ε · log σ(−z),
    ε being the label smoothing (probability that the label is flipped). Minimising L
    increases z while ε < 0.5. Rewards logged are β·(log π − log π_ref) per side.

    Args:
        beta: temperature β > 0, typically 0.01–0.5.
        label_smoothing: ε in [0, 0.5), typically 0–0.2.
    Shapes: log-probs [B] each → scalar loss (mean over the batch).
    """

    Params = DPOParams
    title = "DPO with optional label smoothing (cDPO), arXiv:2305.18290"

    def __init__(self, beta: float = 0.1, label_smoothing: float = 0.0):
        super().__init__()
        check_beta(beta, "dpo")
        check_label_smoothing(label_smoothing, "dpo")
        self.beta = beta
        self.label_smoothing = label_smoothing

    def forward(self, x: LossInputs) -> LossOutput:
        ref_c, ref_r = require_reference(x, "dpo")
        chosen_ratio = x.policy_chosen.sum - ref_c.sum
        rejected_ratio = x.policy_rejected.sum - ref_r.sum
        z = self.beta * (chosen_ratio - rejected_ratio)
        eps = self.label_smoothing
        losses = -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)
        metrics = reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x)
        return LossOutput(losses.mean(), metrics)
