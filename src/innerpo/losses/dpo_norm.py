"""DPO on per-token mean log-ratios (length-normalized DPO)."""

from __future__ import annotations

import torch.nn.functional as F

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import logratios, per_token


class DPONormLoss(PreferenceLoss):
    """Length-normalized DPO (DPO: Rafailov et al. 2023, arXiv:2305.18290, with the
    per-token normalization SimPO argues for, arXiv:2405.14734); TRL's ``sigmoid_norm``.

    Intuition: DPO's summed log-ratios favour long completions; dividing each side by its
    length compares average per-token evidence instead.

    With n_w, n_l the completion token counts,
        z = β·[(log π(y_w|x) − log π_ref(y_w|x))/n_w − (log π(y_l|x) − log π_ref(y_l|x))/n_l],
        L = −log σ(z).
    Descending it raises the per-token margin (the quantity logged as ``margin_per_token``,
    β times the bracket). β is on a per-token scale, so useful values are larger than for
    ``dpo``: typically 0.5–10.

    Args:
        beta: β > 0.
    Shapes: log-probs [B] each, ntok [B] each → scalar loss (mean over the batch).
    Metrics: TRL's rewards/* are β·(summed log-ratio), as TRL logs them.
    """

    Params = Beta
    title = "Length-normalized DPO on per-token log-ratios (β=1.0), arXiv:2305.18290 + arXiv:2405.14734"
    preset = {"beta": 1.0}

    def __init__(self, beta: float = 0.1):
        super().__init__()
        check_beta(beta, "dpo-norm")
        self.beta = beta

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "dpo-norm")
        z = self.beta * (per_token(chosen_ratio, x.policy_chosen) - per_token(rejected_ratio, x.policy_rejected))
        losses = -F.logsigmoid(z)
        metrics = reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x)
        metrics["margin_per_token"] = z.detach().mean()
        return LossOutput(losses.mean(), metrics)
