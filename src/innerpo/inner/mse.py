"""ReprPO's "MSE" loss as its source states it: pull the rejected representation toward
the chosen one, keep the chosen one where it is."""

from __future__ import annotations

from innerpo.inner.align import STABILIZED_FLOOR
from innerpo.inner.common import HiddenLoss, RetainWeight
from innerpo.inner.geometry import EPS
from innerpo.inner.metrics import geometry_metrics
from innerpo.inner.reroute import layer_distances
from innerpo.inner.transforms import HiddenTransform, LayerTransforms
from innerpo.losses.base import LossInputs, LossOutput
from innerpo.losses.common import check_fraction, check_nonneg

MSE_RETAIN_WEIGHT = 0.6
"""α of ReprPO's ``MSELossConfig``."""


class ReprPOMSELoss(HiddenLoss):
    """Make the policy's rejected state like the reference's chosen state, while keeping
    the policy's chosen state the same. Log distances relative to the reference separation.

    Source: ReprPO by wassname, ``reprpo/interventions/losses/mse.py`` (branches ``main`` and
    ``vast2``): "loss_reroute: the repr of policy rejected responses should be closer to the
    reference chosen responses"; "loss_retain: the repr of policy model chosen responses
    should be closer to the ref model chosen responses", both "as a ratio to the distance
    between the chosen responses and the rejected responses in the reference model".

    Per layer and pair, with ν = max(n, φ·mean_B n) the (detached) reference separation
    n = ‖h_rc − h_rr‖ floored as in ``stabilized_ratio``'s mean-fraction mode (φ = 0.1):

        reroute = log(‖h_rc − h_pr‖ / ν)       0 at initialisation (when n ≥ φ·mean n)
        retain  = log1p(‖h_rc − h_pc‖² / ν²)   0 at initialisation, with zero gradient
        L = mean_pairs mean_layers [ reroute + α·retain ]          α = 0.6 (the source's)

    Sign (the source's): minimising L moves h_pr toward h_rc, so the policy's
    chosen-minus-rejected difference d_π *shrinks*: s = d_π·u falls below n and the
    hidden margin (``hidden/para``) goes down while the loss goes down. That is what the
    source asks for ("make hs_rejected like hs_chosen"); for the opposite, circuit-breaker
    direction (push rejected away) use the ``reroute`` loss.

    Departures from the code: (1) retain is log1p of the *squared* relative drift. The code's
    log(‖h_rc − h_pc‖ + 1e-12) − log n sits at log(1e-12/n) ≈ −28 at initialisation, its
    minimum, and its gradient (1/distance) is unbounded as soon as the policy moves, so it
    cannot train. log1p keeps the intention (0 when the chosen state is retained, growing
    with drift); squaring (the loss is named MSE) makes it smooth at 0, so it grows only to
    second order in the drift while reroute falls to first order. With the plain distance,
    AdamW's first steps (every weight moves by ~lr) raised retain faster than reroute fell
    and the term trained alone on SmolLM2 rose (0 → 0.036 in 6 steps at lr 3e-4).
    (2) the code multiplies the loss by 100 "to make ideal lr around 1e-4"; here the
    method's ``alpha`` weighs the term. (3) the denominator is floored (ν) so pairs whose
    reference states coincide do not dominate.

    Args: alpha α ≥ 0 (retain weight, default 0.6), floor φ in [0, 1] (default 0.1),
    transform (optional, applied to all four states first).
    Shapes: ``x.hidden.pooled[layer]`` = four [B, D] states → scalar loss.
    Metrics: ``mse/reroute``, ``mse/retain`` plus hidden geometry.
    """

    Params = RetainWeight
    title = "ReprPO's MSE: pull rejected toward the reference's chosen state, retain chosen (lowers the hidden margin by design)"

    @classmethod
    def from_params(cls, p: RetainWeight) -> "ReprPOMSELoss":
        return cls(alpha=MSE_RETAIN_WEIGHT if p.retain_weight is None else p.retain_weight)

    @classmethod
    def rotation_invariant(cls, p: RetainWeight) -> bool:
        return True

    def __init__(
        self,
        alpha: float = MSE_RETAIN_WEIGHT,
        floor: float = STABILIZED_FLOOR,
        transform: LayerTransforms | HiddenTransform | None = None,
        eps: float = EPS,
    ):
        super().__init__()
        check_nonneg(alpha, "mse", "retain_weight")
        check_fraction(floor, "mse", "floor")
        self.alpha = alpha
        self.floor = floor
        self.transform = transform
        self.eps = eps

    def forward(self, x: LossInputs) -> LossOutput:
        hidden, reroute, retain = layer_distances(
            x, "mse", self.transform, self.floor, self.eps
        )  # the same distances as reroute/retain
        reroute, retain = reroute.mean(-1), retain.mean(-1)  # [B]
        metrics = {"mse/reroute": reroute.detach().mean(), "mse/retain": retain.detach().mean()}
        metrics.update(geometry_metrics(hidden.pooled))
        return LossOutput((reroute + self.alpha * retain).mean(), metrics)
