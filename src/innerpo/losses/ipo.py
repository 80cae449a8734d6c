"""Identity Preference Optimisation (IPO)."""

from __future__ import annotations

from dataclasses import dataclass

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import logratios, per_token


@dataclass
class IPOParams(Beta):
    ipo_normalize: bool = True
    """IPO on per-token mean log-ratios (TRL's convention); False uses summed log-ratios as in the IPO paper's equation."""  # noqa: E501


class IPOLoss(PreferenceLoss):
    """IPO (Azar et al. 2023, arXiv:2310.12036, Eq. 17).

    Intuition: instead of pushing the DPO margin to infinity, regress it onto a finite
    target 1/(2β), which keeps the policy from drifting arbitrarily far from the reference
    on deterministic preferences.

    With h = log-ratio margin
        h = [log π(y_w|x) − log π_ref(y_w|x)] − [log π(y_l|x) − log π_ref(y_l|x)],
    the loss per pair is
        L = (h − 1/(2β))²,
    minimised at h = 1/(2β) > 0, so descending it raises the chosen-minus-rejected margin
    while h is below the target.

    Convention: ``normalize=True`` (default, TRL's convention, confirmed by the IPO authors)
    divides each side's summed log-ratio by its completion token count before taking h;
    ``normalize=False`` uses summed log-ratios as the paper's equation is written. With
    summed log-ratios the squared loss grows with completion length.

    Args:
        beta: β > 0 (the paper's τ), typically 0.01–1; the target margin is 1/(2β).
        normalize: per-token mean (True) or summed (False) log-ratios.
    Shapes: log-probs [B] each (+ ntok [B]) → scalar loss (mean over the batch).
    Metrics: TRL's rewards/* are β·(summed log-ratio) whatever ``normalize``; plus
    ``ipo_margin``, the batch mean of h as used in the loss.
    """

    Params = IPOParams
    title = "IPO, squared loss on per-token log-ratio margins (TRL convention), arXiv:2310.12036"

    @classmethod
    def from_params(cls, p: IPOParams) -> "IPOLoss":
        return cls(beta=p.beta, normalize=p.ipo_normalize)

    def __init__(self, beta: float = 0.1, normalize: bool = True):
        super().__init__()
        check_beta(beta, "ipo")
        self.beta = beta
        self.normalize = normalize

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "ipo")
        if self.normalize:
            h = per_token(chosen_ratio, x.policy_chosen) - per_token(rejected_ratio, x.policy_rejected)
        else:
            h = chosen_ratio - rejected_ratio
        losses = (h - 1.0 / (2.0 * self.beta)) ** 2
        metrics = reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x)
        metrics["ipo_margin"] = h.detach().mean()
        return LossOutput(losses.mean(), metrics)
