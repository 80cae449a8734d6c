"""InnerDPO: a DPO/IPO-style loss on a hidden-state margin."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from innerpo.inner.align import NORM_ORDER_DEPENDENT, ROTATION_INVARIANT, STATIONARY_AT_INIT, get_align_method
from innerpo.inner.align_params import AlignParams, align_kwargs, align_reads
from innerpo.inner.common import HiddenForm, HiddenLoss, NormOrder, TrustRegion, hidden_inputs
from innerpo.inner.geometry import EPS, decompose, safe_pnorm, symlog, upcast
from innerpo.inner.hidden_inputs import HiddenInputs, StateQuad
from innerpo.inner.metrics import geometry_metrics
from innerpo.inner.transforms import HiddenTransform, LayerTransforms
from innerpo.losses.base import LossInputs, LossOutput
from innerpo.losses.common import check_nonneg, check_optional_positive, check_positive
from innerpo.losses.weighting import (
    PolicyWeights,
    check_policy_weights,
    policy_weight_reads,
    policy_weights,
    weight_metrics,
)
from innerpo.params import option


def token_drift(policy: Tensor, ref: Tensor, mask: Tensor, eps: float = EPS, p: float = 2.0) -> Tensor:
    """Relative per-token drift of one side from the reference, [B, T, D] × 2 + [B, T] → [B]:

        drift = mean_t ‖h_π,t − h_ref,t‖_p / mean_t ‖h_ref,t‖_p     (means over masked tokens)

    0 at initialisation; dimensionless (a fraction of the reference's typical token norm).
    """
    w = (mask != 0).to(torch.float32)
    count = w.sum(1).clamp(min=1)
    policy, ref = upcast(policy), upcast(ref)
    dist = (safe_pnorm(policy - ref, p, eps=eps) * w).sum(1) / count
    scale = (safe_pnorm(ref, p, eps=eps) * w).sum(1) / count
    return dist / scale.detach().clamp(min=eps**0.5)


INNER_WEIGHT_EPS = 1e-4
"""ε of the hidden weight's logs (ReprPO's ``InnerDPOLossConfig.eps = 1e-4``)."""


def inner_weight(
    h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, p: float = 2.0, eps: float = INNER_WEIGHT_EPS
) -> Tensor:
    """[B] ReprPO's hidden weight (``inner_policy_weights``): WPO's Eq. 2 applied to the
    two-way split of d_π into its parallel and orthogonal parts.

    Source: ReprPO ``vast2`` ``reprpo/interventions/losses/innerdpo.py``, ``innerdpo_loss``
    ("Make weights similar to Eq (2) of the WPO paper"): with a = |s|_p + ε, b = o_p + ε
    (the p-sizes of the parallel and orthogonal parts, :func:`~innerpo.inner.geometry.decompose`),
    q = softmax(log a, log b) and w = min(1, q_par / Σ q²), detached. In closed form

        w = 1                          if a ≥ b   (d_π mostly along u)
        w = a·(a + b) / (a² + b²)      otherwise, falling to 0 as d_π turns across u

    1 at initialisation (o = 0). It multiplies each pair's and layer's margin, so pairs
    whose policy difference has drifted off the reference direction count less.
    """
    g = decompose(h_pc, h_pr, h_rc, h_rr, p=p)
    a, b = g.para.abs() + eps, g.orth_norm + eps
    return torch.clamp(a * (a + b) / (a * a + b * b), max=1.0).detach()


_TRUST = "with --method.trust_region set"


@dataclass
class InnerDPOParams(AlignParams, HiddenForm, TrustRegion, PolicyWeights, NormOrder):
    trust_region_mode: Literal["upper", "both", "lower"] = option("upper", read_when=_TRUST)
    """`upper`: one-sided clamp min(m, τ); `both`: clamp to [−τ, τ]; `lower`: max(m, τ), ReprPO's clamp_bottom (only margins above τ get gradient)."""  # noqa: E501
    trust_region_scope: Literal["pair_layer", "pair", "batch"] = option("pair_layer", read_when=_TRUST)
    """What the InnerDPO trust region clamps: each pair's margin at each layer, each pair's layer-averaged margin, or the batch mean of those."""  # noqa: E501
    token_constraint: float = 0.0
    """Weight of the penalty on the rejected side drifting further from the reference than the chosen side (token level; 0 = off)."""  # noqa: E501
    inner_policy_weights: bool = False
    """InnerDPO: multiply each pair's and layer's margin by ReprPO's hidden weight min(1, a(a+b)/(a²+b²)), a = |s|, b = o (WPO's Eq. 2 on the parallel/orthogonal split; innerpo.inner.innerdpo.inner_weight)."""  # noqa: E501
    detach_rejected: bool = False
    """InnerDPO: stop the gradient through the policy's rejected states, so only the chosen side moves (ReprPO's `detach_ref`, which despite its name detaches the policy's rejected states)."""  # noqa: E501


class InnerDPOLoss(HiddenLoss):
    """InnerDPO: DPO/IPO applied to a hidden-state margin instead of a log-prob margin.

    Source: ReprPO by wassname (github.com/wassname/repr-preference-optimization,
    ``reprpo/interventions/losses/innerdpo.py``); DPO (Rafailov et al. 2023,
    arXiv:2305.18290); IPO (Azar et al. 2023, arXiv:2310.12036); the token constraint is
    after TDPO (Zeng et al. 2024, arXiv:2404.11999), which bounds per-token divergence.

    Intuition: DPO raises how much more the policy prefers chosen over rejected *in its
    outputs*; InnerDPO raises how far the policy's *hidden* chosen-minus-rejected
    difference reaches along the direction the reference model already separates them
    by, hoping that moving the representation generalises further than moving outputs.
    This loss computes only the hidden term; the method layer adds the output-level loss
    with weights (CombinedLoss), e.g. ``L = L_dpo + α·L_inner``.

    Per layer l and pair i, with m = the chosen align method (see
    :mod:`innerpo.inner.align`; all share the sign convention "higher = d_π further
    along u"):

        m_il  = align(h_pc, h_pr, h_rc, h_rr)
        m_il ← min(m_il, τ)             trust_region="upper" (one-sided)
               clamp(m_il, −τ, τ)       trust_region="both"  (two-sided)
        m_il ← m_il − λ·relu(drift_rej − drift_cho)         token constraint, λ > 0
        z_i   = mean_l m_il
        L     = mean_i −log σ(β·z_i)                         loss_type="dpo"
                mean_i (z_i − 1/(2β))²                       loss_type="ipo"
                mean_i −symlog(z_i)                          loss_type="simper" (no β)

    Minimising L raises z while the trust region is not binding. The trust region stops
    rewarding separation beyond τ (in the align method's units, e.g. for ``pars_rat``
    τ = 1 means "twice the reference's separation"): the clamped part has zero gradient.
    Two-sided clamping also stops the gradient for margins below −τ (the pair is then
    left alone rather than pulled back), which one-sided clamping keeps.
    ``trust_region_scope`` says what is clamped: ``pair_layer`` (above, as ReprPO's code
    does), ``pair`` (each pair's layer-averaged margin z_i, the journal's proposal: a pair
    may exceed τ at one layer if it is below at another), or ``batch`` (the batch mean z̄:
    once z̄ > τ every pair is shifted by τ − z̄ and gets no gradient from this term).

    ``loss_type="simper"`` is ReprPO's InnerDPO with ``dpo_loss="SimPER"`` (vast2
    ``innerdpo.py``), which adds symlog(signed_proj) *to be minimised*, lowering the
    projection s it means to raise; here the sign follows the intention and z (the chosen
    align method's margin) replaces signed_proj, so ``align_method=para_signed`` gives the
    source's quantity. Like SimPER it has no β.

    Token constraint: drift_side = mean_t ‖h_π,t − h_ref,t‖ / mean_t ‖h_ref,t‖ over the
    side's completion tokens (:func:`token_drift`). It penalises the rejected side
    drifting further from the reference than the chosen side, which can inflate the
    pooled margin by scrambling the rejected representation rather than moving it
    along u. It needs token-level states: ``HiddenInputs.tokens`` and both masks.

    Args:
        align_method: a name in :data:`~innerpo.inner.align.ALIGN_METHODS` (default ``pars_rat``).
        beta: β_h > 0, scale of the margin inside the loss (typ. 0.1–10, depends on the
            align method's units; for IPO the target margin is 1/(2β)).
        loss_type: ``dpo`` (−log σ), ``ipo`` (squared distance to 1/(2β)) or ``simper`` (−symlog).
        trust_region: τ > 0, or None (default) for no clamping.
        trust_region_mode: ``upper`` (default) or ``both``.
        trust_region_scope: ``pair_layer`` (default), ``pair`` or ``batch``.
        token_constraint: λ ≥ 0 (default 0 = off); typical 0.1–1.
        align_kwargs: extra keyword arguments of the align method (``smoothing`` for
            logodds/odds, ``floor`` for stabilized_ratio).
        transform: optional :class:`~innerpo.inner.transforms.LayerTransforms` (or one
            shared transform) applied to all four states first; its parameters train.
        eps: safe-norm epsilon.
    Shapes: ``x.hidden.pooled[layer]`` = four [B, D] states; tokens [B, T, D] with masks
    [B, T] for the token constraint → scalar loss.

    Metrics: ``hidden/margin/<layer>`` (batch mean of the raw align margin per layer),
    ``hidden/margin`` (mean of z, after clamping and penalty), ``hidden/clamped`` (share of
    pair-layer margins cut by the trust region), ``hidden/token_penalty``, and the
    geometry of :mod:`innerpo.inner.metrics` (para, orth, cosines of policy vs reference).
    """

    Params = InnerDPOParams
    title = "InnerDPO: DPO on the hidden margin along the reference preference direction"

    @classmethod
    def from_params(cls, p: InnerDPOParams) -> "InnerDPOLoss":
        return cls(
            align_method=p.align_method,
            beta=p.hidden_beta,
            loss_type=p.hidden_loss_type,
            trust_region=p.trust_region,
            trust_region_mode=p.trust_region_mode,
            trust_region_scope=p.trust_region_scope,
            token_constraint=p.token_constraint,
            align_kwargs=align_kwargs(p),
            norm_p=p.norm_p,
            inner_policy_weights=p.inner_policy_weights,
            detach_rejected=p.detach_rejected,
            policy_weighting=PolicyWeights(p.use_policy_weights, p.policy_weight_temperature, p.policy_weight_form),
        )

    @classmethod
    def reads(cls, p: InnerDPOParams) -> set[str]:
        reads = align_reads(p) | {
            "hidden_loss_type",
            "trust_region",
            "token_constraint",
            "inner_policy_weights",
            "detach_rejected",
        }
        reads |= policy_weight_reads(p)
        if p.hidden_loss_type != "simper":  # SimPER's form has no β
            reads.add("hidden_beta")
        if p.trust_region is not None:
            reads |= {"trust_region_mode", "trust_region_scope"}
        if cls._reads_norm(p):
            reads.add("norm_p")
        return reads

    @staticmethod
    def _reads_norm(p: InnerDPOParams) -> bool:
        """Whether the norm order can change the term under `p`."""
        return p.align_method in NORM_ORDER_DEPENDENT or p.inner_policy_weights or p.token_constraint > 0

    @classmethod
    def rotation_invariant(cls, p: InnerDPOParams) -> bool:
        if p.norm_p != 2 and cls._reads_norm(p):  # p-norms depend on the basis
            return False
        return p.align_method in ROTATION_INVARIANT

    @classmethod
    def stationary_at_init(cls, p: InnerDPOParams) -> bool:
        return p.align_method in STATIONARY_AT_INIT

    @classmethod
    def token_level(cls, p: InnerDPOParams) -> bool:
        return p.token_constraint > 0

    def __init__(
        self,
        align_method: str = "pars_rat",
        beta: float = 1.0,
        loss_type: Literal["dpo", "ipo"] = "dpo",
        trust_region: float | None = None,
        trust_region_mode: Literal["upper", "both"] = "upper",
        token_constraint: float = 0.0,
        trust_region_scope: Literal["pair_layer", "pair", "batch"] = "pair_layer",
        align_kwargs: dict | None = None,
        transform: LayerTransforms | HiddenTransform | None = None,
        eps: float = EPS,
        norm_p: float = 2.0,
        inner_policy_weights: bool = False,
        detach_rejected: bool = False,
        policy_weighting: PolicyWeights | None = None,
    ):
        super().__init__()
        name = "inner_dpo"
        self.align_fn = get_align_method(align_method)
        self.align_method = align_method
        self.align_kwargs = dict(align_kwargs or {})
        accepted = set(inspect.signature(self.align_fn).parameters) - {"h_pc", "h_pr", "h_rc", "h_rr", "eps", "p"}
        unknown = set(self.align_kwargs) - accepted
        if unknown:
            raise ValueError(
                f"{name}: align method {align_method!r} takes no {sorted(unknown)}; "
                f"it accepts {sorted(accepted) or 'no extra arguments'}"
            )
        check_positive(beta, name, "hidden_beta")
        if loss_type not in ("dpo", "ipo", "simper"):
            raise ValueError(f"{name}: loss_type must be 'dpo', 'ipo' or 'simper', got {loss_type!r}")
        check_optional_positive(trust_region, name, "trust_region")
        if trust_region_mode not in ("upper", "both", "lower"):
            raise ValueError(f"{name}: trust_region_mode must be 'upper', 'both' or 'lower', got {trust_region_mode!r}")
        if trust_region_scope not in ("pair_layer", "pair", "batch"):
            raise ValueError(
                f"{name}: trust_region_scope must be 'pair_layer', 'pair' or 'batch', got {trust_region_scope!r}"
            )
        check_nonneg(token_constraint, name, "token_constraint")
        if not (isinstance(norm_p, (int, float)) and norm_p >= 1 and norm_p < float("inf")):
            raise ValueError(
                f"{name}: norm_p must be a finite number >= 1 (a norm order), got {norm_p}; try --method.norm_p=2"
            )
        self.wpo = policy_weighting or PolicyWeights()
        check_policy_weights(self.wpo, name)
        self.policy_stats = ("wpo",) if self.wpo.use_policy_weights else ()
        self.norm_p = float(norm_p)
        self.inner_policy_weights = inner_policy_weights
        self.detach_rejected = detach_rejected
        if "p" in inspect.signature(self.align_fn).parameters:
            self.align_kwargs.setdefault("p", self.norm_p)
        self.beta = beta
        self.loss_type = loss_type
        self.trust_region = trust_region
        self.trust_region_mode = trust_region_mode
        self.trust_region_scope = trust_region_scope
        self.token_constraint = token_constraint
        self.transform = transform
        self.eps = eps

    def layer_margins(self, hidden: HiddenInputs) -> dict[str, Tensor]:
        """Raw align margin [B] per layer (no clamping, no penalty)."""
        return {k: self.align_fn(*q, eps=self.eps, **self.align_kwargs) for k, q in hidden.pooled.items()}

    def _token_penalty(self, hidden: HiddenInputs, layer: str) -> Tensor:
        if hidden.tokens is None:
            raise ValueError(
                "inner_dpo: token_constraint > 0 needs token-level states; build LossInputs.hidden with "
                "HiddenInputs.from_tokens(...) (or pass tokens= and both masks)"
            )
        q: StateQuad = hidden.tokens[layer]
        drift_c = token_drift(q.policy_chosen, q.ref_chosen, hidden.chosen_mask, self.eps, self.norm_p)
        drift_r = token_drift(q.policy_rejected, q.ref_rejected, hidden.rejected_mask, self.eps, self.norm_p)
        return F.relu(drift_r - drift_c)

    def forward(self, x: LossInputs) -> LossOutput:
        hidden = hidden_inputs(x, "inner_dpo", self.transform)
        if self.detach_rejected:
            hidden = _detach_policy_rejected(hidden)
        raw = self.layer_margins(hidden)
        metrics: dict[str, Tensor] = {f"hidden/margin/{k}": m.detach().mean() for k, m in raw.items()}
        per_layer, clamped, penalties, weights = [], [], [], []
        for k, m in raw.items():
            if self.inner_policy_weights:
                w = inner_weight(*hidden.pooled[k], p=self.norm_p)
                weights.append(w)
                m = m * w
            if self.trust_region_scope == "pair_layer":
                m = self._clamp(m, clamped)
            if self.token_constraint > 0:
                pen = self._token_penalty(hidden, k)
                penalties.append(pen)
                m = m - self.token_constraint * pen
            per_layer.append(m)
        z = torch.stack(per_layer, -1).mean(-1)  # [B]
        if self.trust_region_scope == "pair":
            z = self._clamp(z, clamped)
        elif self.trust_region_scope == "batch" and self.trust_region is not None:
            zbar = z.mean()
            clamped_z = self._clamp(zbar, clamped)  # τ (or −τ) once outside, else z̄ itself
            z = torch.where(clamped_z.detach() != zbar.detach(), z.detach() + (clamped_z - zbar).detach(), z)
        if self.loss_type == "dpo":
            losses = -F.logsigmoid(self.beta * z)
        elif self.loss_type == "ipo":
            losses = (z - 1.0 / (2.0 * self.beta)) ** 2
        else:
            losses = -symlog(z)
        w_pol = None
        if self.wpo.use_policy_weights:
            w_pol = policy_weights(x, self.wpo.policy_weight_temperature, self.wpo.policy_weight_form, "inner_dpo")
            losses = losses * w_pol
        metrics.update(weight_metrics(w_pol))
        if weights:
            metrics["weights/inner"] = torch.stack(weights).mean()
        metrics["hidden/margin"] = z.detach().mean()
        if clamped:
            metrics["hidden/clamped"] = torch.cat(clamped).mean()
        if penalties:
            metrics["hidden/token_penalty"] = torch.stack(penalties).detach().mean()
        metrics.update(geometry_metrics(hidden.pooled))
        return LossOutput(losses.mean(), metrics)

    def _clamp(self, m: Tensor, clamped: list[Tensor]) -> Tensor:
        """The trust region on margins m (any shape); records which were cut."""
        tau = self.trust_region
        if tau is None:
            return m
        if self.trust_region_mode == "both":
            clamped.append((m.detach().abs() > tau).float().reshape(-1))
            return m.clamp(-tau, tau)
        if self.trust_region_mode == "lower":
            clamped.append((m.detach() < tau).float().reshape(-1))
            return m.clamp(min=tau)
        clamped.append((m.detach() > tau).float().reshape(-1))
        return m.clamp(max=tau)


def _detach_policy_rejected(hidden: HiddenInputs) -> HiddenInputs:
    """`hidden` with the policy's rejected states (pooled and token-level) cut from the graph."""
    pooled = {k: q._replace(policy_rejected=q.policy_rejected.detach()) for k, q in hidden.pooled.items()}
    tokens = (
        None
        if hidden.tokens is None
        else {k: q._replace(policy_rejected=q.policy_rejected.detach()) for k, q in hidden.tokens.items()}
    )
    return HiddenInputs(
        pooled=pooled, tokens=tokens, chosen_mask=hidden.chosen_mask, rejected_mask=hidden.rejected_mask
    )
