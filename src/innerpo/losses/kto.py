"""Kahneman-Tversky Optimization (KTO), on paired and on unpaired data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, SeqLogps, check_beta, require_reference
from innerpo.losses.common import check_positive

#: LossInputs.extra keys read by KTO with ``kl_estimate="mismatched"``.
KL_POLICY_KEY = "kl_policy_logps"
KL_REF_KEY = "kl_ref_logps"


def check_kto_labels(labels) -> None:
    """Refuse a KTO training set that lacks desirable or undesirable examples.

    Call it once on the whole dataset's labels (a bool sequence or tensor, True =
    desirable) when building the data; single micro-batches may hold one class only.
    """
    labels = torch.as_tensor(labels, dtype=torch.bool)
    n_good = int(labels.sum())
    n_bad = int(labels.numel()) - n_good
    if n_good == 0 or n_bad == 0:
        raise ValueError(
            f"kto: the data has {n_good} desirable (label=True) and {n_bad} undesirable (label=False) "
            "examples; KTO needs both. Add examples of the missing kind, or use a paired dataset "
            "(each pair gives one of each)."
        )


@dataclass
class KTOParams(Beta):
    kto_desirable_weight: float = 1.0
    """KTO weight λ_D > 0 of desirable (chosen / label=True) examples."""
    kto_undesirable_weight: float = 1.0
    """KTO weight λ_U > 0 of undesirable (rejected / label=False) examples."""
    kto_kl_estimate: Literal["mismatched", "batch"] = "mismatched"
    """KTO reference point z0: `mismatched` (TRL) reads KL log-probs of mismatched prompt/completion pairs from LossInputs.extra; `batch` uses the batch-mean log-ratio clamped at 0."""


class KTOLoss(PreferenceLoss):
    """KTO (Ethayarajh et al. 2024, arXiv:2402.01306, Eq. 7); TRL's KTOTrainer ``kto``.

    Intuition: a prospect-theoretic value function on each response alone — desirable
    responses are rewarded for beating a reference point z0 (the policy's KL from the
    reference), undesirable ones for falling below it — so it needs only a good/bad label
    per completion, not pairs.

    With r = log π(y|x) − log π_ref(y|x) (summed log-probs) for each completion,
        desirable   (chosen, label True):   L_D = λ_D·[1 − σ(β·(r − z0))]
        undesirable (rejected, label False): L_U = λ_U·[1 − σ(β·(z0 − r))]
        L = mean over all N_D + N_U completions of those terms
    (TRL's reduction: a weighted sum divided by N_D + N_U). z0 is detached. Descending L
    raises desirable log-ratios and lowers undesirable ones.

    Reference point z0 (``kl_estimate``):
      * ``"mismatched"`` (default; TRL's convention): z0 = max(0, mean_j[log π(y'_j|x_j) −
        log π_ref(y'_j|x_j)]) over M mismatched sequences, prompt x_j with a completion y'_j
        of another example of the batch. TRL rotates completions by one within the batch:
        x_i is paired with the completion of example i−1 (mod the batch size). The loop
        passes their summed log-probs, computed without gradient, as
        ``LossInputs.extra["kl_policy_logps"]`` and ``extra["kl_ref_logps"]`` ([M] each;
        on paired data e.g. the chosen of pair i−1 under the prompt of pair i, M = B), or
        as ``kl_policy``/``kl_ref`` of :meth:`forward_unpaired`. The batch needs B ≥ 2.
      * ``"batch"``: z0 = max(0, mean of the batch's own log-ratios r over all completions
        (chosen and rejected)), detached — no extra forward.

    Paired data: :meth:`forward` treats each pair as one desirable (chosen) and one
    undesirable (rejected) completion, as TRL does after unpairing a preference set.

    Unpaired data (``prompt, completion, label``): the loop calls
    :meth:`forward_unpaired(policy, ref, labels, kl_policy, kl_ref)` with the batch's
    single completions as SeqLogps [B], bool labels [B] (True = desirable), and for
    ``"mismatched"`` the KL log-probs [M]. Single-class batches are allowed (as in TRL);
    a dataset without both kinds should be refused when it is built, with
    :func:`check_kto_labels`. CombinedLoss (paired) does not route unpaired batches.

    Args:
        beta: β > 0, typically 0.01–0.5 (TRL default 0.1).
        desirable_weight: λ_D > 0; with N_D ≠ N_U in the data, the paper suggests
            λ_D·N_D / (λ_U·N_U) in [1, 4/3].
        undesirable_weight: λ_U > 0.
        kl_estimate: "mismatched" or "batch".
    Shapes: paired: log-probs [B] each → scalar; unpaired: [B] + labels [B] → scalar.
    Metrics (TRL names): rewards/chosen, rewards/rejected (means of β·r over each kind,
    present when the batch has that kind), rewards/margins (their difference, when both),
    logps/chosen, logps/rejected (summed), ``kl`` (z0); paired also rewards/accuracies.
    """

    Params = KTOParams
    title = "KTO, prospect-theoretic; pairs or prompt/completion/label data, arXiv:2402.01306"

    @classmethod
    def from_params(cls, p: KTOParams) -> "KTOLoss":
        return cls(
            beta=p.beta,
            desirable_weight=p.kto_desirable_weight,
            undesirable_weight=p.kto_undesirable_weight,
            kl_estimate=p.kto_kl_estimate,
        )

    def __init__(
        self,
        beta: float = 0.1,
        desirable_weight: float = 1.0,
        undesirable_weight: float = 1.0,
        kl_estimate: Literal["mismatched", "batch"] = "mismatched",
    ):
        super().__init__()
        check_beta(beta, "kto")
        check_positive(desirable_weight, "kto", "kto_desirable_weight", "1.0")
        check_positive(undesirable_weight, "kto", "kto_undesirable_weight", "1.0")
        if kl_estimate not in ("mismatched", "batch"):
            raise ValueError(
                f"kto: kto_kl_estimate must be 'mismatched' or 'batch', got {kl_estimate!r}; "
                "try --method.kto_kl_estimate=mismatched"
            )
        self.beta = beta
        self.desirable_weight = desirable_weight
        self.undesirable_weight = undesirable_weight
        self.kl_estimate = kl_estimate

    @property
    def needs_kl_inputs(self) -> bool:
        """True when the method must pass the mismatched KL log-probs (``kl_estimate="mismatched"``);
        methods look for this flag on every component (absent = False)."""
        return self.kl_estimate == "mismatched"

    # -- reference point -------------------------------------------------------------

    def reference_point(self, ratios: Tensor, kl_policy: Tensor | None, kl_ref: Tensor | None) -> Tensor:
        """Detached scalar z0 ≥ 0 from the KL log-probs or (``batch``) the batch's log-ratios [N]."""
        if self.kl_estimate == "batch":
            return ratios.detach().mean().clamp(min=0)
        if kl_policy is None or kl_ref is None:
            raise ValueError(
                "kto: kto_kl_estimate='mismatched' needs the summed log-probs of mismatched prompt/completion "
                f"pairs under the policy and the reference, as LossInputs.extra[{KL_POLICY_KEY!r}] and "
                f"extra[{KL_REF_KEY!r}] (or kl_policy/kl_ref of forward_unpaired); have the loop compute them, "
                "or try --method.kto_kl_estimate=batch"
            )
        if kl_policy.shape != kl_ref.shape or kl_policy.numel() == 0:
            raise ValueError(
                f"kto: KL log-probs must be two non-empty tensors of one shape, got {tuple(kl_policy.shape)} "
                f"and {tuple(kl_ref.shape)}"
            )
        return (kl_policy.detach() - kl_ref.detach()).mean().clamp(min=0)

    # -- entry points ----------------------------------------------------------------

    def forward(self, x: LossInputs) -> LossOutput:
        """Paired data: chosen = desirable, rejected = undesirable."""
        ref_c, ref_r = require_reference(x, "kto")
        ratio_c = x.policy_chosen.sum - ref_c.sum
        ratio_r = x.policy_rejected.sum - ref_r.sum
        z0 = self.reference_point(torch.cat([ratio_c, ratio_r]), x.extra.get(KL_POLICY_KEY), x.extra.get(KL_REF_KEY))
        out = self._loss(ratio_c, ratio_r, x.policy_chosen.sum, x.policy_rejected.sum, z0)
        margins = (ratio_c - ratio_r).detach()
        out.metrics["rewards/accuracies"] = (margins > 0).float().mean()
        return out

    def forward_unpaired(
        self,
        policy: SeqLogps,
        ref: SeqLogps,
        labels: Tensor,
        kl_policy: Tensor | None = None,
        kl_ref: Tensor | None = None,
    ) -> LossOutput:
        """Unpaired data: B single completions, labels [B] bool (True = desirable)."""
        labels = torch.as_tensor(labels, device=policy.sum.device)
        if labels.dtype != torch.bool:
            if not bool(((labels == 0) | (labels == 1)).all()):
                raise ValueError("kto: labels must be booleans (True = desirable, False = undesirable)")
            labels = labels.bool()
        if labels.dim() != 1 or labels.shape[0] != policy.sum.shape[0] or ref.sum.shape != policy.sum.shape:
            raise ValueError(
                f"kto: labels {tuple(labels.shape)}, policy {tuple(policy.sum.shape)} and reference "
                f"{tuple(ref.sum.shape)} log-probs must all be [B]"
            )
        if labels.numel() == 0:
            raise ValueError("kto: empty batch")
        ratios = policy.sum - ref.sum
        z0 = self.reference_point(ratios, kl_policy, kl_ref)
        return self._loss(ratios[labels], ratios[~labels], policy.sum[labels], policy.sum[~labels], z0)

    # -- shared ------------------------------------------------------------------------

    def _loss(self, ratio_d: Tensor, ratio_u: Tensor, logps_d: Tensor, logps_u: Tensor, z0: Tensor) -> LossOutput:
        losses_d = self.desirable_weight * (1 - torch.sigmoid(self.beta * (ratio_d - z0)))
        losses_u = self.undesirable_weight * (1 - torch.sigmoid(self.beta * (z0 - ratio_u)))
        loss = torch.cat([losses_d, losses_u]).mean()
        metrics: dict[str, Tensor] = {"kl": z0.detach()}
        if ratio_d.numel():
            metrics["rewards/chosen"] = (self.beta * ratio_d).detach().mean()
            metrics["logps/chosen"] = logps_d.detach().mean()
        if ratio_u.numel():
            metrics["rewards/rejected"] = (self.beta * ratio_u).detach().mean()
            metrics["logps/rejected"] = logps_u.detach().mean()
        if ratio_d.numel() and ratio_u.numel():
            metrics["rewards/margins"] = metrics["rewards/chosen"] - metrics["rewards/rejected"]
        return LossOutput(loss, metrics)
