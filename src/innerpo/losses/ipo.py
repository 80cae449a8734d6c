"""Identity Preference Optimisation (IPO)."""

from __future__ import annotations

from dataclasses import dataclass

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import logratios, per_token
from innerpo.losses.weighting import (
    Mallows,
    PolicyWeights,
    check_mallows,
    check_policy_weights,
    mallows_dispersion,
    mallows_reads,
    policy_weight_reads,
    policy_weights,
    weight_metrics,
)


@dataclass
class IPOParams(Beta, PolicyWeights, Mallows):
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

    Pair weighting (innerpo.losses.weighting), as for ``dpo``: ``use_mallows`` scales the
    margin, h ← φ·h; ``use_policy_weights`` multiplies each pair's L by its WPO weight.
    Departure: the research code's IPO branch with Mallows (``dpo.py``,
    ``compute_dpo_loss``, after RainbowPO) replaces Eq. 17 by relu(1/2 − β·φ·h)², which
    stops penalising margins above the target; here Eq. 17 stays, on φ·h.

    Args:
        beta: β > 0 (the paper's τ), typically 0.01–1; the target margin is 1/(2β).
        normalize: per-token mean (True) or summed (False) log-ratios.
        use_policy_weights, policy_weight_temperature, policy_weight_form: WPO.
        use_mallows, mallows_dispersion_mean: Mallows.
    Shapes: log-probs [B] each (+ ntok [B]) → scalar loss (mean over the batch).
    Metrics: TRL's rewards/* are β·(summed log-ratio) whatever ``normalize``; plus
    ``ipo_margin``, the batch mean of h as used in the loss.
    """

    Params = IPOParams
    title = "IPO, squared loss on per-token log-ratio margins (TRL convention), arXiv:2310.12036"

    @classmethod
    def from_params(cls, p: IPOParams) -> "IPOLoss":
        return cls(
            beta=p.beta,
            normalize=p.ipo_normalize,
            wpo=PolicyWeights(p.use_policy_weights, p.policy_weight_temperature, p.policy_weight_form),
            mallows=Mallows(p.use_mallows, p.mallows_dispersion_mean),
        )

    @classmethod
    def reads(cls, p: IPOParams) -> set[str]:
        return {"beta", "ipo_normalize"} | policy_weight_reads(p) | mallows_reads(p)

    def __init__(
        self,
        beta: float = 0.1,
        normalize: bool = True,
        wpo: PolicyWeights | None = None,
        mallows: Mallows | None = None,
    ):
        super().__init__()
        check_beta(beta, "ipo")
        self.beta = beta
        self.normalize = normalize
        self.wpo, self.mallows = wpo or PolicyWeights(), mallows or Mallows()
        check_policy_weights(self.wpo, "ipo")
        check_mallows(self.mallows, "ipo")
        self.policy_stats = ("wpo",) if self.wpo.use_policy_weights else ()
        self.reference_stats = ("entropy",) if self.mallows.use_mallows else ()

    def forward(self, x: LossInputs) -> LossOutput:
        chosen_ratio, rejected_ratio = logratios(x, "ipo")
        if self.normalize:
            h = per_token(chosen_ratio, x.policy_chosen) - per_token(rejected_ratio, x.policy_rejected)
        else:
            h = chosen_ratio - rejected_ratio
        phi = w = None
        if self.mallows.use_mallows:
            phi = mallows_dispersion(x, self.mallows.mallows_dispersion_mean, "ipo")
            h = phi * h
        losses = (h - 1.0 / (2.0 * self.beta)) ** 2
        if self.wpo.use_policy_weights:
            w = policy_weights(x, self.wpo.policy_weight_temperature, self.wpo.policy_weight_form, "ipo")
            losses = losses * w
        metrics = reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x)
        metrics.update(weight_metrics(w, phi))
        metrics["ipo_margin"] = h.detach().mean()
        return LossOutput(losses.mean(), metrics)
