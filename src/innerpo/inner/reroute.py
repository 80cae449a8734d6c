"""Reroute/retain on hidden states, circuit-breaker style (this project's redesign of
ReprPO's "MSE" loss; the source's own definition is :mod:`innerpo.inner.mse`)."""

from __future__ import annotations

import torch
from torch import Tensor

from innerpo.inner.align import STABILIZED_FLOOR
from innerpo.inner.common import HiddenLoss, RetainWeight, hidden_inputs
from innerpo.inner.geometry import EPS, decompose, safe_norm, upcast
from innerpo.inner.metrics import geometry_metrics
from innerpo.inner.transforms import HiddenTransform, LayerTransforms
from innerpo.losses.base import LossInputs, LossOutput
from innerpo.losses.common import check_fraction, check_nonneg, check_optional_positive

REROUTE_TRUST_REGION = 1.0
"""Default τ for the reroute term: reward pushing the rejected state up to e¹ ≈ 2.7× the
reference separation away from the reference's chosen state, and no further."""


def distance_terms(
    h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, floor: float, eps: float = EPS
) -> dict[str, Tensor]:
    """For one layer, [B] each: reroute = log(‖h_pr − h_rc‖ / ν) and retain =
    log1p(‖h_pc − h_rc‖² / ν²), with ν = max(n, floor·mean_B n) the detached reference
    separation n = ‖h_rc − h_rr‖. Shared by reroute/retain (which raises reroute) and
    ReprPO's MSE (which lowers it)."""
    h_pc, h_pr, h_rc, h_rr = (upcast(h) for h in (h_pc, h_pr, h_rc, h_rr))
    n = decompose(h_pc, h_pr, h_rc, h_rr, eps).ref_norm.detach()
    nu = torch.maximum(n, floor * n.mean())
    reroute = torch.log(safe_norm(h_pr - h_rc, eps=eps) / nu)
    retain = torch.log1p((h_pc - h_rc).pow(2).sum(-1) / nu**2)
    return {"reroute": reroute, "retain": retain}


def layer_distances(x: LossInputs, name: str, transform, floor: float, eps: float = EPS):
    """(hidden, reroute, retain): the method's hidden inputs after `transform`, and
    `distance_terms` of every pair at every layer, [B, L] each (shared by reroute and mse)."""
    hidden = hidden_inputs(x, name, transform)
    per_layer = [distance_terms(*q, floor, eps) for q in hidden.pooled.values()]
    return hidden, torch.stack([p["reroute"] for p in per_layer], -1), torch.stack([p["retain"] for p in per_layer], -1)


class RerouteRetainLoss(HiddenLoss):
    """Reroute the rejected representation away from where the reference puts it; retain
    the chosen representation where the reference puts it. Log distances.

    Sources: circuit breakers / representation rerouting (Zou et al. 2024,
    arXiv:2406.04313): push representations of unwanted behaviour away from the
    original model's while a retain loss keeps wanted ones unchanged; ReprPO by wassname
    (``reprpo/interventions/losses/mse.py``): the same two terms as log distance ratios
    against the reference separation.

    Per layer and pair, with ν = max(n, φ·mean_B n) the (detached) reference separation
    n = ‖h_rc − h_rr‖, floored as in ``stabilized_ratio``:

        reroute = log(‖h_pr − h_rc‖ / ν)     how far the rejected state is from the
                                             reference's chosen state (0 at init if n ≥ φ·mean n)
        retain  = log1p(‖h_pc − h_rc‖² / ν²) how far the chosen state drifted (0 at init)
        L = mean_pairs mean_layers [ −min(reroute, τ) + α·retain ]

    Design: the literal circuit-breaker reroute (distance, or cosine, between h_pr and
    h_rr) is stationary at initialisation, where policy = reference, so a LoRA starting
    at zero gets no gradient from it. Measuring the rejected state's distance from the
    *chosen* reference state instead has gradient −d_ref/n² there: the rejected state
    leaves the place the reference puts it, in the anti-preference direction, so s = d_π·u
    rises (consistent with the InnerDPO margins). ReprPO's version minimised this same
    distance (pulling rejected toward chosen, lowering s; that is the ``mse`` loss,
    :class:`~innerpo.inner.mse.ReprPOMSELoss`); the sign here is the circuit-breaker one,
    and this loss is named ``reroute``. The trust region τ bounds the reward (log distances are
    unbounded above). Retain is log1p of the squared relative drift: 0 with zero gradient at
    the reference and second order in the drift. (With the plain distance, first order,
    the term trained alone on SmolLM2 rose from 0 to 0.068 in 6 steps at lr 3e-4: AdamW's
    first steps move every weight by ~lr and raised retain faster than reroute rewarded.)

    Args:
        alpha: α ≥ 0, retain weight (default 1.0).
        trust_region: τ > 0 on the reroute log distance (default 1.0), None for no cap.
        floor: φ in [0, 1] (default 0.1).
        transform: optional transforms applied to all four states first.
    Shapes: ``x.hidden.pooled[layer]`` = four [B, D] states → scalar loss.
    Metrics: ``reroute/reroute``, ``reroute/retain`` (the log terms), plus hidden geometry.
    """

    Params = RetainWeight
    title = "reroute/retain, circuit-breaker style: push rejected away from the reference's chosen state, retain chosen"

    @classmethod
    def from_params(cls, p: RetainWeight) -> "RerouteRetainLoss":
        return cls(alpha=1.0 if p.retain_weight is None else p.retain_weight)

    @classmethod
    def rotation_invariant(cls, p: RetainWeight) -> bool:
        return True

    def __init__(
        self,
        alpha: float = 1.0,
        trust_region: float | None = REROUTE_TRUST_REGION,
        floor: float = STABILIZED_FLOOR,
        transform: LayerTransforms | HiddenTransform | None = None,
        eps: float = EPS,
    ):
        super().__init__()
        check_nonneg(alpha, "reroute_retain", "retain_weight")
        check_optional_positive(trust_region, "reroute_retain", "trust_region")
        check_fraction(floor, "reroute_retain", "floor")
        self.alpha = alpha
        self.trust_region = trust_region
        self.floor = floor
        self.transform = transform
        self.eps = eps

    def forward(self, x: LossInputs) -> LossOutput:
        hidden, reroute, retain = layer_distances(x, "reroute_retain", self.transform, self.floor, self.eps)
        rewarded = reroute.clamp(max=self.trust_region) if self.trust_region is not None else reroute
        losses = (-rewarded + self.alpha * retain).mean(-1)
        metrics = {"reroute/reroute": reroute.detach().mean(), "reroute/retain": retain.detach().mean()}
        metrics.update(geometry_metrics(hidden.pooled))
        return LossOutput(losses.mean(), metrics)
