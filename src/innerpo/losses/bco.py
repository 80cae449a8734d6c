"""Binary Classifier Optimization (BCO), pairwise form."""

from __future__ import annotations

import torch.nn.functional as F

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import logratios


class BCOLoss(PreferenceLoss):
    """BCO on pairs (Jung et al. 2024, arXiv:2404.04656); TRL's ``bco_pair``.

    Intuition: train the implicit reward as a binary classifier — chosen responses
    labelled 1, rejected ones 0 — each side on its own rather than through their
    difference.

    With r_w = β·(log π(y_w|x) − log π_ref(y_w|x)) and r_l likewise (summed log-probs),
        L = −log σ(r_w) − log σ(−r_l).
    Descending it raises r_w and lowers r_l. As in TRL 1.16's ``bco_pair`` there is no
    running-mean reward shift δ (the paper's unpaired BCO has one).

    Args:
        beta: β > 0, typically 0.01–0.5.
    Shapes: log-probs [B] each → scalar loss (mean over the batch).
    """

    Params = Beta
    title = "BCO, binary classifier optimization on pairs, arXiv:2404.04656"

    def __init__(self, beta: float = 0.1):
        super().__init__()
        check_beta(beta, "bco")
        self.beta = beta

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "bco")
        r_w, r_l = self.beta * chosen_ratio, self.beta * rejected_ratio
        losses = -F.logsigmoid(r_w) - F.logsigmoid(-r_l)
        return LossOutput(losses.mean(), reward_metrics(r_w, r_l, x))
