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
class DPOParams(Beta, LabelSmoothing, PolicyWeights, Mallows):
    """DPO's options: β, the cDPO label smoothing ε, WPO and Mallows weighting."""


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

    Optional pair weighting (innerpo.losses.weighting): with ``use_mallows`` the margin is
    z ← φ·z, φ the Mallows dispersion weight from the reference's entropy (Mallows-DPO,
    arXiv:2405.14953); with ``use_policy_weights`` each pair's L is multiplied by its WPO
    weight w (arXiv:2406.11827) before the mean, L = mean_i w_i·L_i. Both are constants
    (no gradient); rewards and margins are logged without them, as in the research code.

    Args:
        beta: temperature β > 0, typically 0.01–0.5.
        label_smoothing: ε in [0, 0.5), typically 0–0.2.
        use_policy_weights, policy_weight_temperature, policy_weight_form: WPO.
        use_mallows, mallows_dispersion_mean: Mallows.
    Shapes: log-probs [B] each → scalar loss (mean over the batch).
    """

    Params = DPOParams
    title = "DPO with optional label smoothing (cDPO), arXiv:2305.18290"

    @classmethod
    def reads(cls, p: DPOParams) -> set[str]:
        return {"beta", "label_smoothing"} | policy_weight_reads(p) | mallows_reads(p)

    def __init__(
        self,
        beta: float = 0.1,
        label_smoothing: float = 0.0,
        use_policy_weights: bool = False,
        policy_weight_temperature: float = 3.0,
        policy_weight_form: str = "sigmoid",
        use_mallows: bool = False,
        mallows_dispersion_mean: float = 0.29,
    ):
        super().__init__()
        check_beta(beta, "dpo")
        check_label_smoothing(label_smoothing, "dpo")
        self.wpo = PolicyWeights(use_policy_weights, policy_weight_temperature, policy_weight_form)
        self.mallows = Mallows(use_mallows, mallows_dispersion_mean)
        check_policy_weights(self.wpo, "dpo")
        check_mallows(self.mallows, "dpo")
        self.beta = beta
        self.label_smoothing = label_smoothing
        self.policy_stats = ("wpo",) if use_policy_weights else ()
        self.reference_stats = ("entropy",) if use_mallows else ()

    def forward(self, x: LossInputs) -> LossOutput:
        ref_c, ref_r = require_reference(x, "dpo")
        chosen_ratio = x.policy_chosen.sum - ref_c.sum
        rejected_ratio = x.policy_rejected.sum - ref_r.sum
        z = self.beta * (chosen_ratio - rejected_ratio)
        phi = w = None
        if self.mallows.use_mallows:
            phi = mallows_dispersion(x, self.mallows.mallows_dispersion_mean, "dpo")
            z = phi * z
        eps = self.label_smoothing
        losses = -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)
        if self.wpo.use_policy_weights:
            w = policy_weights(x, self.wpo.policy_weight_temperature, self.wpo.policy_weight_form, "dpo")
            losses = losses * w
        metrics = reward_metrics(self.beta * chosen_ratio, self.beta * rejected_ratio, x)
        metrics.update(weight_metrics(w, phi))
        return LossOutput(losses.mean(), metrics)
