"""Self-Play Preference Optimization (SPPO), hard-label form."""

from __future__ import annotations

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import logratios


class SPPOLoss(PreferenceLoss):
    """SPPO with hard win probabilities (Wu et al. 2024, arXiv:2405.00675, Eq. 4.7 with
    P(y_w ≻ y_l) = 1); TRL's ``sppo_hard``.

    Intuition: regress each response's log-ratio onto its centred win probability
    scaled by 1/β: the winner's towards +1/(2β), the loser's towards −1/(2β).

    With ρ_w = log π(y_w|x) − log π_ref(y_w|x) and ρ_l likewise (summed log-probs),
        L = (ρ_w − 1/(2β))² + (ρ_l + 1/(2β))².
    Descending it from ρ_w = ρ_l = 0 raises ρ_w, lowers ρ_l, so the margin rises.
    (The soft-probability SPPO, with P estimated by a preference model, is not offered.)

    Args:
        beta: β > 0, typically 0.001–0.1 (the paper's η = 1/β).
    Shapes: log-probs [B] each → scalar loss (mean over the batch).
    """

    Params = Beta
    title = "SPPO with hard win probabilities, arXiv:2405.00675"

    def __init__(self, beta: float = 0.1):
        super().__init__()
        check_beta(beta, "sppo")
        self.beta = beta

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "sppo")
        target = 0.5 / self.beta
        losses = (chosen_ratio - target) ** 2 + (rejected_ratio + target) ** 2
        return LossOutput(losses.mean(), reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x))
