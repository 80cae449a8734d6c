"""SLiC / RSO hinge loss."""

from __future__ import annotations

import torch

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import logratios


class HingeLoss(PreferenceLoss):
    """Hinge loss of SLiC-HF (Zhao et al. 2023, arXiv:2305.10425) in the reference-ratio
    form of RSO (Liu et al. 2023, arXiv:2309.06657); TRL's ``hinge``.

    Intuition: a max-margin classifier on the implicit reward — pairs already separated by
    the margin cost nothing, the others are pushed linearly.

    With z = β·[(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))]
    (summed completion log-probs), the loss per pair is
        L = max(0, 1 − z),
    i.e. SLiC's margin δ = 1/β on the log-ratio margin. Descending it raises z until z ≥ 1.

    Args:
        beta: β > 0, typically 0.01–1 (margin 1/β in log-ratio units).
    Shapes: log-probs [B] each → scalar loss (mean over the batch).
    """

    Params = Beta
    title = "SLiC-HF hinge loss on reference log-ratios, arXiv:2305.10425"

    def __init__(self, beta: float = 0.1):
        super().__init__()
        check_beta(beta, "hinge")
        self.beta = beta

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "hinge")
        z = self.beta * (chosen_ratio - rejected_ratio)
        losses = torch.relu(1.0 - z)
        return LossOutput(losses.mean(), reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x))
