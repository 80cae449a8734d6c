"""Anchored Preference Optimization (APO): apo-zero and apo-down."""

from __future__ import annotations

from typing import Literal

import torch

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import logratios


class APOLoss(PreferenceLoss):
    """APO (D'Oosterlinck et al. 2024, arXiv:2408.06266, Eqs. 7–8); TRL's ``apo_zero`` /
    ``apo_down``.

    Intuition: DPO only fixes the margin, not where the likelihoods go; APO anchors each
    side's implicit reward against zero (the reference) so the user says which way the
    chosen likelihood should move.

    With r_w = β·(log π(y_w|x) − log π_ref(y_w|x)) and r_l likewise (summed log-probs):
        apo-zero:  L = [1 − σ(r_w)] + σ(r_l)
            raises r_w and lowers r_l; use when chosen outputs are better than the model's.
        apo-down:  L = σ(r_w) + [1 − σ(r_w − r_l)]
            lowers r_w and lowers r_l more, so the margin r_w − r_l still rises; use when
            chosen outputs are worse than the model's own.
    Each loss lies in (0, 2).

    Args:
        beta: β > 0, typically 0.01–0.5.
        mode: "zero" or "down".
    Shapes: log-probs [B] each → scalar loss (mean over the batch).
    """

    Params = Beta
    title = "APO, anchored preference optimization, arXiv:2408.06266"

    def __init__(self, beta: float = 0.1, mode: Literal["zero", "down"] = "zero"):
        super().__init__()
        name = f"apo-{mode}"
        check_beta(beta, name)
        if mode not in ("zero", "down"):
            raise ValueError(
                f"apo: mode must be 'zero' or 'down', got {mode!r}; use the loss name apo-zero or apo-down"
            )
        self.beta = beta
        self.mode = mode

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, f"apo-{self.mode}")
        r_w, r_l = self.beta * chosen_ratio, self.beta * rejected_ratio
        if self.mode == "zero":
            losses = (1 - torch.sigmoid(r_w)) + torch.sigmoid(r_l)
        else:
            losses = torch.sigmoid(r_w) + (1 - torch.sigmoid(r_w - r_l))
        return LossOutput(losses.mean(), reward_metrics(r_w, r_l, x))
