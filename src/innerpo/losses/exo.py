"""EXact Optimization (EXO), pairwise form."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from innerpo.losses.base import Beta, LabelSmoothing, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import check_label_smoothing, logratios


@dataclass
class EXOParams(Beta, LabelSmoothing):
    """EXO's options: β and ε (EXO takes log ε, so its preset sets the paper's 1e-3)."""


class EXOLoss(PreferenceLoss):
    """EXO-pref for K = 2 (Ji et al. 2024, arXiv:2402.00856, Eq. 16); TRL's ``exo_pair``.

    Intuition: minimise the reverse KL from the policy's implicit preference distribution
    over the pair to a smoothed target distribution, which is mode-seeking like RLHF's
    objective (DPO minimises the forward KL).

    With z = β·[(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))]
    (summed log-probs), q = (σ(z), σ(−z)) and target p = (1 − ε, ε):
        L = KL(q ‖ p) = σ(z)·[log σ(z) − log(1 − ε)] + σ(−z)·[log σ(−z) − log ε].
    Minimised at σ(z) = 1 − ε, i.e. z = log((1 − ε)/ε) > 0; descending it from z < that
    raises the margin.

    Args:
        beta: β > 0, typically 0.01–0.5.
        label_smoothing: ε in (0, 0.5), required > 0 (log ε); the paper recommends 1e-3.
    Shapes: log-probs [B] each → scalar loss (mean over the batch).
    """

    Params = EXOParams
    title = "EXO, efficient exact optimization (pairs, ε=1e-3), arXiv:2402.00856"
    preset = {"label_smoothing": 1e-3}

    def __init__(self, beta: float = 0.1, label_smoothing: float = 1e-3):
        super().__init__()
        check_beta(beta, "exo")
        check_label_smoothing(label_smoothing, "exo (needs ε > 0, the paper uses 1e-3)", allow_zero=False)
        self.beta = beta
        self.label_smoothing = label_smoothing

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "exo")
        z = self.beta * (chosen_ratio - rejected_ratio)
        eps = self.label_smoothing
        losses = torch.sigmoid(z) * (F.logsigmoid(z) - math.log1p(-eps)) + torch.sigmoid(-z) * (
            F.logsigmoid(-z) - math.log(eps)
        )
        return LossOutput(losses.mean(), reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x))
