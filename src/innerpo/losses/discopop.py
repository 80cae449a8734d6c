"""DiscoPOP: the log-ratio modulated loss found by LLM-driven discovery."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import check_positive, logratios


@dataclass
class DiscoPOPParams(Beta):
    discopop_tau: float = 0.05
    """DiscoPOP temperature of the logistic/exponential blend; > 0 (paper and TRL: 0.05)."""


class DiscoPOPLoss(PreferenceLoss):
    """DiscoPOP / LRML (Lu et al. 2024, arXiv:2406.08414, Eq. 5); TRL's ``discopop``.

    Intuition: blend DPO's logistic loss with an exponential loss, leaning on the
    exponential one once the pair is already well separated (a non-convex loss that the
    paper's search found to work well).

    With z = β·[(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))]
    (summed log-probs) and m = σ(z/τ),
        L = (1 − m)·(−log σ(z)) + m·exp(−z).
    Both parts decrease in z but the blend does not: with τ = 0.05, L has a local minimum
    near z ≈ −0.11 and a local maximum near z ≈ +0.08 (the non-convexity the paper
    reports). Outside that band descending L raises the margin z; inside it, it lowers z
    towards the local minimum.

    Numerics: the exponential part is evaluated as exp(−z + log σ(z/τ)) (exponent clamped
    at 80), equal to TRL's m·exp(−z) where that is finite, and finite where TRL's
    product overflows to inf·0 = nan (z ≲ −88 in float32).

    Args:
        beta: β > 0, typically 0.01–0.5.
        tau: τ > 0, the blend temperature; the paper (and TRL) use 0.05.
    Shapes: log-probs [B] each → scalar loss (mean over the batch).
    """

    Params = DiscoPOPParams
    title = "DiscoPOP, discovered log-ratio modulated loss (β=τ=0.05), arXiv:2406.08414"
    preset = {"beta": 0.05, "discopop_tau": 0.05}

    @classmethod
    def from_params(cls, p: DiscoPOPParams) -> "DiscoPOPLoss":
        return cls(beta=p.beta, tau=p.discopop_tau)

    def __init__(self, beta: float = 0.1, tau: float = 0.05):
        super().__init__()
        check_beta(beta, "discopop")
        check_positive(tau, "discopop", "discopop_tau", "0.05")
        self.beta = beta
        self.tau = tau

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "discopop")
        z = self.beta * (chosen_ratio - rejected_ratio)
        logistic = -F.logsigmoid(z) * torch.sigmoid(-z / self.tau)
        exponential = torch.exp((-z + F.logsigmoid(z / self.tau)).clamp(max=80.0))
        losses = logistic + exponential
        return LossOutput(losses.mean(), reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x))
