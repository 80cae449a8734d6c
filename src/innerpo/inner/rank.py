"""Rank: a DPO-style preference over hidden dimensions, via log-softmax of the states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from innerpo.inner.common import HiddenForm, HiddenLoss, hidden_inputs
from innerpo.inner.geometry import upcast
from innerpo.inner.hidden_inputs import HiddenInputs
from innerpo.inner.metrics import geometry_metrics
from innerpo.inner.transforms import HiddenTransform, LayerTransforms
from innerpo.losses.base import LossInputs, LossOutput
from innerpo.losses.common import check_positive


def _lp(h: Tensor) -> Tensor:
    return F.log_softmax(upcast(h), dim=-1)


def _lp_tokens(h: Tensor, mask: Tensor) -> Tensor:
    w = (mask != 0).to(torch.float32).unsqueeze(-1)
    return (_lp(h) * w).sum(1) / w.sum(1).clamp(min=1)


@dataclass
class RankParams(HiddenForm):
    """rank reads the hidden β and the dpo/ipo form (SimPER's is InnerDPO's alone)."""


class RankLoss(HiddenLoss):
    """Rank: treat softmax over hidden dimensions as a distribution and apply DPO per dimension.

    Source: ReprPO by wassname, ``reprpo/interventions/losses/rank.py``.

    Intuition: a hidden state is not a distribution, but log_softmax over its D
    coordinates gives each coordinate a "log-probability" that depends on its rank
    relative to the others. Apply the DPO construction coordinate-wise: per dimension j,

        ρ_c,j = lp(h_pc)_j − lp(h_rc)_j,   ρ_r,j = lp(h_pr)_j − lp(h_rr)_j,   ρ_j = ρ_c,j − ρ_r,j
        L = mean_pairs mean_layers mean_j −log σ(β·ρ_j)          loss_type="dpo"
            mean_pairs mean_layers mean_j (ρ_j − 1/(2β))²        loss_type="ipo"

    where lp = log_softmax over D. Minimising L raises ρ_j: dimension j gains relative
    weight in the chosen state and loses it in the rejected state, compared with the
    reference. ρ = 0 at initialisation. The quantity to watch is mean_j ρ_j
    (``rank/rho``). Because lp subtracts a log-sum-exp, ρ is unchanged by adding a constant
    to every coordinate; it responds to the *shape* of the state. Unlike the InnerDPO
    margins it is not rotation invariant, so orthogonal transforms do change it.

    Sign: ReprPO's code (``rank_loss``) minimised −log σ(−β·ρ), which rewards the opposite
    (chosen dimensions losing weight); its docstring states the intention: "make a loss of
    the log ratios (ptheta), making the chosen hs more likely, and the rejected less". The
    code's sign contradicts that sentence, so this loss follows the sentence (the DPO sign,
    so "chosen preferred" means the same as in every other loss of this package). The
    source's retain terms (relu of the DPO and NLL ratios) are output-level and left to the
    method's output loss.

    token_level: False (default) applies log_softmax to the pooled states; True applies
    it per token and then takes the masked mean over completion tokens (ReprPO's order;
    needs ``HiddenInputs.tokens`` and both masks).

    Args: beta β > 0 (default 1.0; ρ is a difference of log-probabilities, O(0.1–1) per
    dimension after training), loss_type ``dpo``/``ipo``, token_level, transform.
    Shapes: four [B, D] pooled states (or [B, T, D] tokens) per layer → scalar loss.
    Metrics: ``rank/rho``, ``rank/rho_chosen``, ``rank/rho_rejected`` (means over pairs,
    layers and dimensions) plus hidden geometry.
    """

    Params = RankParams
    title = "rank: DPO over hidden dimensions via log-softmax"

    @classmethod
    def from_params(cls, p: RankParams) -> "RankLoss":
        return cls(beta=p.hidden_beta, loss_type=p.hidden_loss_type)

    def __init__(
        self,
        beta: float = 1.0,
        loss_type: Literal["dpo", "ipo"] = "dpo",
        token_level: bool = False,
        transform: LayerTransforms | HiddenTransform | None = None,
    ):
        super().__init__()
        check_positive(beta, "rank", "hidden_beta")
        if loss_type not in ("dpo", "ipo"):
            raise ValueError(f"rank: loss_type must be 'dpo' or 'ipo', got {loss_type!r}")
        self.beta = beta
        self.loss_type = loss_type
        self.token_level = token_level
        self.transform = transform

    def log_probs(self, hidden: HiddenInputs, layer: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """lp of the four states of one layer, [B, D] each."""
        if not self.token_level:
            return tuple(_lp(h) for h in hidden.pooled[layer])  # type: ignore[return-value]
        if hidden.tokens is None:
            raise ValueError("rank: token_level=True needs HiddenInputs.tokens and both masks")
        q = hidden.tokens[layer]
        cm, rm = hidden.chosen_mask, hidden.rejected_mask
        return (
            _lp_tokens(q.policy_chosen, cm),
            _lp_tokens(q.policy_rejected, rm),
            _lp_tokens(q.ref_chosen, cm),
            _lp_tokens(q.ref_rejected, rm),
        )

    def forward(self, x: LossInputs) -> LossOutput:
        hidden = hidden_inputs(x, "rank", self.transform)
        # Per layer, then averaged over layers: collected points may differ in width
        # (side activations), and each layer counts the same whatever its width.
        losses, rhos, rcs, rrs, metrics = [], [], [], [], {}
        for layer in hidden.layers:
            lp_pc, lp_pr, lp_rc, lp_rr = self.log_probs(hidden, layer)
            rc, rr = lp_pc - lp_rc, lp_pr - lp_rr  # [B, D_layer]
            rho = rc - rr
            if self.loss_type == "dpo":
                losses.append((-F.logsigmoid(self.beta * rho)).mean())
            else:
                losses.append(((rho - 1.0 / (2.0 * self.beta)) ** 2).mean())
            rhos.append(rho.detach().mean())
            rcs.append(rc.detach().mean())
            rrs.append(rr.detach().mean())
            metrics[f"hidden/margin/{layer}"] = rhos[-1]
        metrics.update(
            {
                "rank/rho": torch.stack(rhos).mean(),
                "rank/rho_chosen": torch.stack(rcs).mean(),
                "rank/rho_rejected": torch.stack(rrs).mean(),
            }
        )
        metrics.update(geometry_metrics(hidden.pooled))
        return LossOutput(torch.stack(losses).mean(), metrics)
