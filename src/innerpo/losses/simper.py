"""SimPER: preference alignment by inverse perplexity, without hyperparameters."""

from __future__ import annotations

import torch

from innerpo.losses.base import LossInputs, LossOutput, PreferenceLoss, reward_metrics
from innerpo.losses.weighting import (
    PolicyWeights,
    check_policy_weights,
    policy_weight_reads,
    policy_weights,
    weight_metrics,
)


class SimPERLoss(PreferenceLoss):
    """SimPER (Xiao et al. 2025, arXiv:2502.00883, Eq. 8). Not in TRL 1.16.

    Intuition: raise the inverse perplexity of the chosen completion and lower that of the
    rejected one; working in probability space (bounded in (0, 1]) keeps the gradient on
    the rejected side from exploding, and no β, margin or reference model is needed.

    With the per-token mean log-probs m_w = log π(y_w|x)/n_w and m_l = log π(y_l|x)/n_l,
        L = −exp(m_w) + exp(m_l) ∈ (−1, 1).
    Descending it raises m_w and lowers m_l.

    No hyperparameters; reference-free (``needs_reference = False``).
    Shapes: log-probs [B] each (+ ntok [B]) → scalar loss (mean over the batch).
    Metrics: rewards/* are the inverse perplexities exp(m_w), exp(m_l); logps/* are summed
    log-probs, plus ``logps/chosen_mean`` and ``logps/rejected_mean``.
    """

    needs_reference = False
    Params = PolicyWeights
    title = "SimPER, reference-free perplexity optimization, no hyperparameters, arXiv:2502.00883"

    @classmethod
    def reads(cls, p: PolicyWeights) -> set[str]:
        return policy_weight_reads(p)

    def __init__(
        self,
        use_policy_weights: bool = False,
        policy_weight_temperature: float = 3.0,
        policy_weight_form: str = "sigmoid",
    ):
        """Optional WPO weighting of each pair's loss (innerpo.losses.weighting), as the
        research code's SimPER branch (``dpo.py``: ``loss * policy_weights``) does; the
        research code's InnerDPO default (``dpo_loss="SimPER"``) reads it on both terms."""
        super().__init__()
        self.wpo = PolicyWeights(use_policy_weights, policy_weight_temperature, policy_weight_form)
        check_policy_weights(self.wpo, "simper")
        self.policy_stats = ("wpo",) if use_policy_weights else ()

    def forward(self, x: LossInputs) -> LossOutput:
        m_w, m_l = x.policy_chosen.mean, x.policy_rejected.mean
        inv_ppl_w, inv_ppl_l = torch.exp(m_w), torch.exp(m_l)
        losses = -inv_ppl_w + inv_ppl_l
        w = None
        if self.wpo.use_policy_weights:
            w = policy_weights(x, self.wpo.policy_weight_temperature, self.wpo.policy_weight_form, "simper")
            losses = losses * w
        metrics = reward_metrics(inv_ppl_w, inv_ppl_l, x)
        metrics.update(weight_metrics(w))
        metrics["logps/chosen_mean"] = m_w.detach().mean()
        metrics["logps/rejected_mean"] = m_l.detach().mean()
        return LossOutput(losses.mean(), metrics)
