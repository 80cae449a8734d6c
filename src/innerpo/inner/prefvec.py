"""PrefVec: move chosen forward and rejected backward along the reference preference vector."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from innerpo.inner.align import STABILIZED_FLOOR
from innerpo.inner.common import HiddenLoss, TrustRegion, hidden_inputs
from innerpo.inner.geometry import EPS, decompose, safe_cosine, safe_norm, upcast
from innerpo.inner.metrics import geometry_metrics
from innerpo.inner.transforms import HiddenTransform, LayerTransforms
from innerpo.losses.base import LossInputs, LossOutput
from innerpo.losses.common import check_fraction, check_nonneg, check_optional_positive


@dataclass
class PrefVecParams(TrustRegion):
    prefvec_orth_weight: float = 0.0
    """PrefVec: weight of the sideways-movement penalty (ReprPO's use_orth_loss, off by default there)."""
    prefvec_angle_weight: float = 0.0
    """PrefVec: weight of the 1 − cos(d_π, d_ref) penalty (ReprPO's use_angle_loss, off by default there)."""


class PrefVecLoss(HiddenLoss):
    """PrefVec: steer each side's hidden-state movement along the preference vector.

    Source: ReprPO by wassname, ``reprpo/interventions/losses/prefvec.py`` (branch ``main``),
    whose stated intention is "moves the hidden states of the chosen and rejected hidden
    states along the preference vector, with some constraints": punish orthogonal movement
    by distance (``use_orth_loss``) and by angle (``use_angle_loss``), both *off* by
    default there, and keep the chosen answer preferred (its DPO term, here the method's
    output loss). Defaults here follow the source's: w_orth = w_angle = 0.

    Departures from the code, each because the code contradicts that intention:
    - its projection term is ``a_proj.mean(dim=-1)``, the mean over coordinates of the
      projection *vector* s·u, i.e. s·mean(u), whose sign depends on the basis; here the
      scalar projection s is used.
    - its default ``use_proj_abs_loss`` minimises |−s·mean(u)|, which drives the projection
      to 0 (collapsing the preference); here −proj is minimised, raising it.
    - its ×1e5/×1e6 scale factors are dropped; the projection is measured relative to the
      reference separation (ν below), which makes it scale free instead.
    - its angle term −|cos| rewards anti-alignment as much as alignment; here 1 − cos.

    Intuition: the reference already separates chosen from rejected along
    u = d_ref/‖d_ref‖. Reward the policy for moving its chosen state forward along u
    and its rejected state backward, and penalise movement in every other direction,
    so the adapter sharpens the existing preference direction instead of rewriting the
    representation.

    Per layer and pair, with the movements c = h_pc − h_rc and r = h_pr − h_rr and the
    scale ν = max(n, φ·mean_B n) (n = ‖d_ref‖; the floor φ guards pairs whose reference
    states nearly coincide, as in ``stabilized_ratio``; φ = 0 gives ν = n):

        proj  = (c·u − r·u) / ν             = (s − n)/ν; equals ``pars_rat`` when ν = n
        orth  = (‖c − (c·u)u‖ + ‖r − (r·u)u‖) / ν      sideways movement of each side
        angle = 1 − cos(d_π, d_ref)
        L     = mean_pairs mean_layers [ −min(proj, τ) + w_orth·orth + w_angle·angle ]

    Sign: minimising L raises proj, i.e. raises s = d_π·u (chosen forward, rejected
    backward); the orthogonal and angle terms never lower s (their gradients are
    orthogonal to u, or, for the angle, have a non-negative component along u). All
    terms are 0 at initialisation; the orthogonal term's gradient is 0 there too.
    Trained alone with w_orth > 0, a LoRA step moves states sideways as well as along u,
    so the orthogonal penalty (first order in the movement) can outgrow the projection
    gain and the loss rise above 0: that is why it stays off by default.

    Args:
        orth_weight: w_orth ≥ 0 (default 0.0 = off, as the source).
        angle_weight: w_angle ≥ 0 (default 0.0 = off, as the source).
        trust_region: τ > 0 caps the rewarded proj (None = no cap).
        floor: φ in [0, 1] (default 0.1).
        transform: optional transforms applied to all four states first.
    Shapes: ``x.hidden.pooled[layer]`` = four [B, D] states → scalar loss.
    Metrics: ``prefvec/proj``, ``prefvec/orth``, ``prefvec/angle`` plus hidden geometry.
    """

    Params = PrefVecParams
    title = "PrefVec: move chosen/rejected states along the preference direction, orthogonal part small"

    @classmethod
    def from_params(cls, p: PrefVecParams) -> "PrefVecLoss":
        return cls(orth_weight=p.prefvec_orth_weight, angle_weight=p.prefvec_angle_weight, trust_region=p.trust_region)

    @classmethod
    def rotation_invariant(cls, p: PrefVecParams) -> bool:
        return True

    def __init__(
        self,
        orth_weight: float = 0.0,
        angle_weight: float = 0.0,
        trust_region: float | None = None,
        floor: float = STABILIZED_FLOOR,
        transform: LayerTransforms | HiddenTransform | None = None,
        eps: float = EPS,
    ):
        super().__init__()
        check_nonneg(orth_weight, "prefvec", "prefvec_orth_weight")
        check_nonneg(angle_weight, "prefvec", "prefvec_angle_weight")
        check_optional_positive(trust_region, "prefvec", "trust_region")
        check_fraction(floor, "prefvec", "floor")
        self.orth_weight = orth_weight
        self.angle_weight = angle_weight
        self.trust_region = trust_region
        self.floor = floor
        self.transform = transform
        self.eps = eps

    def terms(self, h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor) -> dict[str, Tensor]:
        """proj, orth, angle: [B] each, for one layer."""
        h_pc, h_pr, h_rc, h_rr = (upcast(h) for h in (h_pc, h_pr, h_rc, h_rr))
        g = decompose(h_pc, h_pr, h_rc, h_rr, self.eps)
        nu = torch.maximum(g.ref_norm, self.floor * g.ref_norm.detach().mean())
        c = h_pc - h_rc
        r = h_pr - h_rr
        c_par = (c * g.unit).sum(-1)
        r_par = (r * g.unit).sum(-1)
        proj = (c_par - r_par) / nu
        orth = (
            safe_norm(c - c_par.unsqueeze(-1) * g.unit, eps=self.eps)
            + safe_norm(r - r_par.unsqueeze(-1) * g.unit, eps=self.eps)
        ) / nu
        angle = 1.0 - safe_cosine(g.d_pi, g.d_ref, eps=self.eps)
        return {"proj": proj, "orth": orth, "angle": angle}

    def forward(self, x: LossInputs) -> LossOutput:
        hidden = hidden_inputs(x, "prefvec", self.transform)
        per_layer = [self.terms(*q) for q in hidden.pooled.values()]
        t = {k: torch.stack([p[k] for p in per_layer], -1).mean(-1) for k in per_layer[0]}  # [B] each
        proj = torch.stack([p["proj"] for p in per_layer], -1)  # [B, L]
        if self.trust_region is not None:
            proj = proj.clamp(max=self.trust_region)
        losses = -proj.mean(-1) + self.orth_weight * t["orth"] + self.angle_weight * t["angle"]
        metrics = {f"prefvec/{k}": v.detach().mean() for k, v in t.items()}
        metrics.update(geometry_metrics(hidden.pooled))
        return LossOutput(losses.mean(), metrics)
