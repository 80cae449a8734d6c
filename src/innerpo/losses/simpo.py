"""SimPO: reference-free, length-normalized preference optimization with a margin."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F

from innerpo.losses.base import Beta, LabelSmoothing, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.common import check_label_smoothing


@dataclass
class SimPOParams(Beta, LabelSmoothing):
    simpo_gamma: float = 0.5
    """SimPO target margin γ >= 0 in reward units (TRL convention: loss = -log σ(β·Δmean − γ)); ignored when simpo_gamma_beta_ratio is set."""
    simpo_gamma_beta_ratio: float | None = None
    """SimPO margin given as γ/β (the SimPO paper's code, typically 0.3–1.0); when set, γ = ratio·β and simpo_gamma is ignored."""


class SimPOLoss(PreferenceLoss):
    """SimPO (Meng, Xia & Chen 2024, arXiv:2405.14734, Eq. 6); TRL's CPOTrainer with
    ``loss_type="simpo"``, ``cpo_alpha=0``.

    Intuition: use the policy's own average per-token log-likelihood as the implicit
    reward (matching how generation is scored, no reference model) and demand that the
    chosen reward beat the rejected one by a target margin γ.

    With m_w = log π(y_w|x)/n_w, m_l = log π(y_l|x)/n_l (per-token mean log-probs),
        z = β·(m_w − m_l) − γ,
        L = −(1 − ε)·log σ(z) − ε·log σ(−z).
    Descending it raises the normalized margin m_w − m_l.

    Convention for γ (the literature differs): ``gamma`` is the absolute margin in reward
    units, as TRL's ``simpo_gamma`` (TRL computes β·(m_w − m_l − γ/β)). The SimPO paper's
    code instead sets γ/β (``gamma_beta_ratio``); pass ``gamma_beta_ratio`` to use that
    form, then γ = gamma_beta_ratio·β and ``gamma`` is ignored.

    Args:
        beta: β > 0; the paper uses 2.0–10 (β = 0.1, the shared default, is weak).
        gamma: γ ≥ 0, absolute target margin; TRL default 0.5, paper 0.3–1.6 in absolute terms.
        gamma_beta_ratio: γ/β ≥ 0 or None; paper 0.3–1.0 (e.g. 0.5).
        label_smoothing: ε in [0, 0.5), as in TRL's CPO/SimPO.
    Shapes: log-probs [B] each, ntok [B] each → scalar loss (mean over the batch).
    Reference-free (``needs_reference = False``).
    Metrics: rewards/* = β·(mean log-probs) as TRL; logps/* summed (innerpo-wide; TRL's
    CPOTrainer logs means there), means under ``logps/chosen_mean``, ``logps/rejected_mean``.
    """

    needs_reference = False

    Params = SimPOParams
    title = "SimPO, reference-free, length-normalized with margin (β=2, γ=1), arXiv:2405.14734"
    preset = {"beta": 2.0, "simpo_gamma": 1.0}

    @classmethod
    def from_params(cls, p: SimPOParams) -> "SimPOLoss":
        return cls(
            beta=p.beta,
            gamma=p.simpo_gamma,
            gamma_beta_ratio=p.simpo_gamma_beta_ratio,
            label_smoothing=p.label_smoothing,
        )

    def __init__(
        self,
        beta: float = 2.0,
        gamma: float = 0.5,
        gamma_beta_ratio: float | None = None,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        check_beta(beta, "simpo")
        if gamma_beta_ratio is not None:
            if not (math.isfinite(gamma_beta_ratio) and gamma_beta_ratio >= 0):
                raise ValueError(
                    f"simpo: simpo_gamma_beta_ratio must be >= 0 (or unset), got {gamma_beta_ratio}; "
                    "try --method.simpo_gamma_beta_ratio=0.5"
                )
            gamma = gamma_beta_ratio * beta
        elif not (math.isfinite(gamma) and gamma >= 0):
            raise ValueError(
                f"simpo: simpo_gamma must be a finite margin >= 0, got {gamma}; try --method.simpo_gamma=0.5"
            )
        check_label_smoothing(label_smoothing, "simpo")
        self.beta = beta
        self.gamma = gamma
        self.label_smoothing = label_smoothing

    def forward(self, x: LossInputs) -> LossOutput:
        m_w, m_l = x.policy_chosen.mean, x.policy_rejected.mean
        z = self.beta * (m_w - m_l) - self.gamma
        eps = self.label_smoothing
        losses = -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)
        metrics = reward_metrics(self.beta * m_w, self.beta * m_l, x)
        metrics["logps/chosen_mean"] = m_w.detach().mean()
        metrics["logps/rejected_mean"] = m_l.detach().mean()
        return LossOutput(losses.mean(), metrics)
