"""Odds Ratio Preference Optimization (ORPO)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from innerpo.losses.base import Beta, LossInputs, LossOutput, PreferenceLoss, check_beta, reward_metrics
from innerpo.losses.sft import chosen_nll

# Per-token mean log-probs are clamped just below 0 so log(1 − p) stays finite when p → 1.
_MAX_MEAN_LOGP = -1e-6


def log1mexp(x: Tensor) -> Tensor:
    """log(1 − exp(x)) for x < 0, stable on both sides of −log 2."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


class ORPOLoss(PreferenceLoss):
    """ORPO (Hong, Lee & Thorne 2024, arXiv:2403.07691, Eqs. 4–7); TRL's ORPOTrainer.

    Intuition: SFT on the chosen completions plus a penalty that raises the odds of the
    chosen completion relative to the rejected one, in one stage, without a reference.

    With p_w = exp(m_w), m_w = log π(y_w|x)/n_w the per-token mean log-prob (the paper's
    length-normalized likelihood; TRL uses the same mean), p_l likewise, and
    odds(p) = p/(1 − p):
        log OR = [m_w − m_l] − [log(1 − p_w) − log(1 − p_l)],
        L = NLL − λ·mean_B log σ(log OR),
    NLL being the mean over the batch of each chosen completion's per-token mean NLL over
    the completion only (TRL's ORPO NLL also covers the prompt tokens and averages over
    all tokens; equal when the prompt contributes nothing and chosen lengths are equal).
    λ is ``beta`` as in TRL. Descending it raises log OR and log π(y_w|x).
    m is clamped at −1e−6 so log(1 − p) stays finite as p → 1.

    Args:
        beta: λ > 0, typically 0.05–0.5 (paper and TRL: 0.1).
    Shapes: log-probs [B] each, ntok [B] each → scalar loss.
    Reference-free (``needs_reference = False``).
    Metrics: TRL names and values — rewards/* = λ·m, ``log_odds_ratio`` = mean log σ(log OR),
    ``log_odds_chosen`` = mean log OR, ``nll_loss``; logps/* are summed (innerpo-wide; TRL
    logs means there), means under ``logps/chosen_mean``, ``logps/rejected_mean``.
    """

    needs_reference = False

    Params = Beta
    title = "ORPO, odds-ratio preference term plus NLL, reference-free, arXiv:2403.07691"

    def __init__(self, beta: float = 0.1):
        super().__init__()
        check_beta(beta, "orpo")
        self.beta = beta

    def forward(self, x: LossInputs) -> LossOutput:
        m_w = x.policy_chosen.mean.clamp(max=_MAX_MEAN_LOGP)
        m_l = x.policy_rejected.mean.clamp(max=_MAX_MEAN_LOGP)
        log_odds = (m_w - m_l) - (log1mexp(m_w) - log1mexp(m_l))
        ratio = F.logsigmoid(log_odds)
        nll = chosen_nll(x)
        loss = nll - self.beta * ratio.mean()
        metrics = reward_metrics(self.beta * m_w, self.beta * m_l, x)
        metrics["log_odds_ratio"] = ratio.detach().mean()
        metrics["log_odds_chosen"] = log_odds.detach().mean()
        metrics["nll_loss"] = nll.detach()
        metrics["logps/chosen_mean"] = m_w.detach().mean()
        metrics["logps/rejected_mean"] = m_l.detach().mean()
        return LossOutput(loss, metrics)
