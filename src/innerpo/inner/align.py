"""InnerDPO align methods: per-pair hidden-state margins.

Each method is a function ``(h_pc, h_pr, h_rc, h_rr) -> margin [B]`` of four pooled
states ``[B, D]`` (policy chosen, policy rejected, reference chosen, reference
rejected), registered by name in :data:`ALIGN_METHODS`. Notation (see
:mod:`innerpo.inner.geometry`): d_ref = h_rc − h_rr, n = ‖d_ref‖, u = d_ref/n,
d_π = h_pc − h_pr, s = d_π·u, o = ‖d_π − s·u‖.

Conventions shared by every method
----------------------------------
* **Sign.** Increasing the margin moves the policy's chosen-minus-rejected difference d_π
  along the reference preference direction u. For the methods built from (s, o, n) (all
  but the cosines and ``orth``), ∂margin/∂s > 0 everywhere and the orthogonal term only
  moves d_π across u, so a gradient-ascent step on the policy states strictly raises s,
  whatever the sign of s. For ``cosine_pref_direction`` the step's component along u is
  ≥ 0 everywhere; for ``cosine_policy_margin`` it is ≥ 0 at the reference point (d_π ∥ u)
  and, by continuity, near it. Two methods have no preference direction by design, as in
  their source: ``cosine_cross_model`` (state mimicry) and ``orth`` (penalises the
  orthogonal part only). Where a source formula had the opposite sign, or a definition
  that cannot train, the docstring says what was changed and why.
* **Stationary at initialisation** (:data:`STATIONARY_AT_INIT`): ``cosine_cross_model``,
  ``cosine_pref_direction`` and ``orth`` have value and gradient 0 while policy =
  reference; they act once another loss has moved the policy.
* **Zero at initialisation** (policy = reference, so d_π = d_ref, s = n, o = 0) for the
  relative methods, so the margin reads "how much better than the reference"; the
  absolute ones (``para_signed``, ``para_signed_log``, ``para_orth_signed``,
  ``para_orth_signed_log``) start at n or log1p(n), as in ReprPO.
* **Negative s.** No method takes the log of a signed quantity. Log-compressed margins use
  ``symlog(x) = sign(x)·log1p(|x|)`` (monotone, odd, gradient 1/(1+|x|) > 0), so a negative
  s gives a lower margin and still a useful gradient; see each docstring.
* **Numerics.** Safe norms (eps inside the sqrt) keep values and gradients finite at
  d_π = 0 and for tiny ‖d_ref‖ (down to 0, where n bottoms out at sqrt(eps) = 1e-6);
  computation is in float32 even for bfloat16 inputs.

Source: the InnerDPO loss of ReprPO (wassname, github.com/wassname/repr-preference-optimization,
``reprpo/interventions/losses/innerdpo.py`` on branch ``vast2``; the journal's earlier
methods ``para``, ``para_orth``, ``para_orth2``, ``orth``, ``direct_projection`` at commit
351560d; the cosine ones at commit 93e3b8c). Definitions here follow its names; departures
(signs, logs of signed quantities, the logodds reference term) are documented per method.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from innerpo.inner.geometry import EPS, decompose, safe_cosine, symlog, upcast

AlignFn = Callable[..., Tensor]

LOGODDS_SMOOTHING = 0.1
"""κ: the smoothing constant of ``logodds``/``odds`` is c = κ·‖d_ref‖ (so they are scale free)."""

STABILIZED_FLOOR = 0.1
"""``stabilized_ratio``'s floor: the 10th percentile of the batch's ‖d_ref‖ (ReprPO's journal:
"bounded the denominator to 10% percentile"), or, with ``floor_mode="mean_fraction"``,
φ = 0.1 × their mean."""


def para_signed(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS, p: float = 2.0) -> Tensor:
    """s = d_π·u: how far the policy's difference reaches along the reference direction.

    Absolute units (hidden-state norm); n at initialisation; unbounded both ways. Negative
    when the policy's chosen-minus-rejected points against the reference's.
    """
    return decompose(h_pc, h_pr, h_rc, h_rr, eps, p).para


def para_signed_log(
    h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS, p: float = 2.0
) -> Tensor:
    """symlog(s) = sign(s)·log1p(|s|): ``para_signed`` with its magnitude compressed.

    Odd and monotone, so s < 0 gives a negative margin with gradient 1/(1+|s|).
    """
    return symlog(para_signed(h_pc, h_pr, h_rc, h_rr, eps=eps, p=p))


def para_orth_signed(
    h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS, p: float = 2.0
) -> Tensor:
    """s − o: reward reach along u, penalise the orthogonal remainder, both in hidden units."""
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps, p)
    return g.para - g.orth_norm


def para_orth_signed_log(
    h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS, p: float = 2.0
) -> Tensor:
    """symlog(s) − log1p(o): ``para_orth_signed`` with both terms log-compressed.

    ReprPO used ``symlog(s) − log(o + eps)``; at initialisation o = 0, where log(o) is
    −∞-like and its gradient 1/o explodes as soon as the policy moves. log1p(o) = symlog(o)
    puts both terms on the same scale and has gradient ≤ 1.
    """
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps, p)
    return symlog(g.para) - torch.log1p(g.orth_norm)


def logodds(
    h_pc: Tensor,
    h_pr: Tensor,
    h_rc: Tensor,
    h_rr: Tensor,
    *,
    eps: float = EPS,
    p: float = 2.0,
    smoothing: float = LOGODDS_SMOOTHING,
) -> Tensor:
    """Log-odds of parallel vs orthogonal, relative to the reference's own log-odds; signed.

    With smoothing c = κ·n (κ = ``smoothing`` > 0), define the smoothed log-odds of a
    difference vector as log(|s| + c) − log(o + c). The reference has s = n and, relative
    to itself, o = 0, so its value is log(n + c) − log(c) (finite thanks to c). The margin:

        m = symlog(s/c) − symlog(n/c) − log1p(o/c)

    For s ≥ 0 this is exactly [log(s + c) − log(o + c)] − [log(n + c) − log(c)], i.e.
    policy log-odds minus reference log-odds. For s < 0 the parallel term continues as
    −log1p(|s|/c): still increasing in s (gradient 1/(c + |s|)), so a negative s gives a
    lower margin, and the orthogonal term is penalised regardless of the sign of s (a
    plain ratio s/o would reward orthogonal drift when s < 0). m = 0 at initialisation,
    m < 0 when the policy is less aligned than the reference. Scale free: depends only
    on s/n and o/n.
    """
    if not smoothing > 0:
        raise ValueError(f"logodds: smoothing must be > 0, got {smoothing}")
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps, p)
    c = smoothing * g.ref_norm
    return symlog(g.para / c) - symlog(g.ref_norm / c) - torch.log1p(g.orth_norm / c)


def odds(
    h_pc: Tensor,
    h_pr: Tensor,
    h_rc: Tensor,
    h_rr: Tensor,
    *,
    eps: float = EPS,
    p: float = 2.0,
    smoothing: float = LOGODDS_SMOOTHING,
) -> Tensor:
    """Odds ratio of parallel vs orthogonal against the reference, minus one: exp(ℓ) − 1.

    ℓ is the :func:`logodds` margin. For ℓ ≥ 0 (policy at least as aligned as the
    reference, which implies s > 0) this is exactly
    [(s + c)/(o + c)] / [(n + c)/c] − 1. For ℓ < 0 the margin is ℓ itself: exp(ℓ) − 1 would
    flatten to −1 and starve the gradient exactly when the policy is anti-aligned, so the
    negative side continues linearly (value and slope match at 0). Monotone in ℓ, hence
    increasing in s and decreasing in o; 0 at initialisation. ℓ is capped at 80 inside
    the exponential so the value stays finite in float32.
    """
    ell = logodds(h_pc, h_pr, h_rc, h_rr, eps=eps, p=p, smoothing=smoothing)
    return torch.where(ell >= 0, torch.expm1(ell.clamp(0.0, 80.0)), ell)


def pars_rat(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS, p: float = 2.0) -> Tensor:
    """s/n − 1: reach along u as a multiple of the reference's own separation, minus one.

    0 at initialisation; 1 means the policy separates chosen from rejected (along u) twice
    as far as the reference. Scale free, but the 1/n factor blows up for pairs whose
    reference states nearly coincide; see ``stabilized_ratio``.
    """
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps, p)
    return g.para / g.ref_norm - 1.0


def pars_rat_log(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS, p: float = 2.0) -> Tensor:
    """symlog(s/n − 1): log of the separation ratio, extended to s ≤ 0.

    For s ≥ n this equals log(s/n) exactly (log1p(s/n − 1)). Below the reference the
    margin is −log1p(1 − s/n), which stays finite as s → 0 and continues (decreasing,
    gradient > 0) for negative s, where ReprPO's ``log(s) − log(n)`` was NaN. ReprPO also
    multiplied by 10; here the scale is left to β.
    """
    return symlog(pars_rat(h_pc, h_pr, h_rc, h_rr, eps=eps, p=p))


def stabilized_ratio(
    h_pc: Tensor,
    h_pr: Tensor,
    h_rc: Tensor,
    h_rr: Tensor,
    *,
    eps: float = EPS,
    p: float = 2.0,
    floor: float = STABILIZED_FLOOR,
    floor_mode: str = "percentile",
) -> Tensor:
    """(s − n) / max(n, f): ``pars_rat`` with its denominator floored at a batch statistic f.

    Pairs whose reference chosen and rejected states nearly coincide make s/n huge and
    dominate a batch mean (the failure ReprPO's journal describes for ``pars_rat``; its
    fix: "bounded the denominator to 10% percentile"). f is computed from the batch's n
    (detached: a statistic, not a path for gradients):

    - ``floor_mode="percentile"`` (default, the journal's choice): f = the ``floor``-quantile
      of n over the batch (0.1 = 10th percentile, linear interpolation as ``torch.quantile``);
    - ``floor_mode="mean_fraction"``: f = ``floor`` × mean_B(n).

    Each pair's gradient is capped at 1/f; pairs with n ≥ f are unchanged from
    ``pars_rat``. 0 at initialisation. The value depends on the batch, so use the same
    batch composition when comparing runs. ``floor`` in (0, 1].
    """
    if not 0 < floor <= 1:
        raise ValueError(f"stabilized_ratio: floor must be in (0, 1], got {floor}")
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps, p)
    n = g.ref_norm.detach()
    if floor_mode == "percentile":
        f = torch.quantile(n, floor)
    elif floor_mode == "mean_fraction":
        f = floor * n.mean()
    else:
        raise ValueError(f"stabilized_ratio: floor_mode must be 'percentile' or 'mean_fraction', got {floor_mode!r}")
    return (g.para - g.ref_norm) / torch.maximum(g.ref_norm, f)


def cosine_policy_margin(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS) -> Tensor:
    """cos(h_rc, h_rr) − cos(h_pc, h_pr): how much less similar the policy finds chosen and
    rejected than the reference does. Range [−2, 2]; 0 at initialisation.

    Sign: ReprPO's formula is cos(h_pc, h_pr) − cos(h_rc, h_rr). Increasing *that* makes
    the policy's chosen and rejected states more alike, shrinking d_π, i.e. collapsing
    the preference; so the margin here is its negation. At the reference point (d_π ∥ u),
    a gradient-ascent step on this margin moves h_pc away from h_pr's direction and h_pr
    away from h_pc's; its component along u is proportional to (‖h_pr‖·|ĥ_pr⊥h_pc|²/‖h_pc‖ +
    ‖h_pc‖·|ĥ_pc⊥h_pr|²/‖h_pr‖) ≥ 0, so s rises to first order. The margin measures
    angular separation only, not its direction; away from the reference point it can
    be raised by separating along other directions too.
    """
    h_pc, h_pr, h_rc, h_rr = (upcast(h) for h in (h_pc, h_pr, h_rc, h_rr))
    return safe_cosine(h_rc, h_rr, eps=eps) - safe_cosine(h_pc, h_pr, eps=eps)


def cosine_cross_model(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS) -> Tensor:
    """cos(h_pc, h_rc) − cos(h_pr, h_rr): ReprPO's definition, state-to-state mimicry.

    Source: ReprPO ``innerdpo.py`` (commit 93e3b8c, "Pull policy states toward corresponding
    reference states ... explicit state-to-state mimicry"). Raising it keeps the policy's
    chosen state pointing where the reference's chosen state points and turns the policy's
    rejected state away from the reference's rejected state. Range [−2, 2].

    At its stationary point by design: at initialisation (policy = reference) both cosines
    are 1, their maximum, so value and gradient are 0 there; the term starts acting once
    another loss (DPO) has moved the policy (a test pins what a step does then). It has no
    preference direction: it does not by itself raise s. For the directional variant see
    ``cosine_pref_direction``.
    """
    h_pc, h_pr, h_rc, h_rr = (upcast(h) for h in (h_pc, h_pr, h_rc, h_rr))
    return safe_cosine(h_pc, h_rc, eps=eps) - safe_cosine(h_pr, h_rr, eps=eps)


def cosine_pref_direction(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS) -> Tensor:
    """cos(d_π, d_ref) − 1: the angle between the policy's and the reference's preference
    directions, compared across the two models. Range [−2, 0]; 0 at initialisation.

    (This project's redesign of ReprPO's ``cosine_cross_model``, which compares states,
    not preference directions; before this name existed it was ``cosine_cross_model``.)
    Scale free and bounded. The gradient w.r.t. d_π is (u − cos·d̂_π)/‖d_π‖, whose
    component along u is (1 − cos²)/‖d_π‖ ≥ 0, so ascent raises s. Because 0 is the
    maximum, the gradient vanishes at initialisation: this margin only resists rotation of
    d_π away from u (a direction-keeping term) and does not by itself push separation.
    """
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps)
    return safe_cosine(g.d_pi, g.d_ref, eps=eps) - 1.0


def direct_projection(
    h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS, p: float = 2.0
) -> Tensor:
    """(d_π − d_ref)·u = s − n: the signed distance the policy has moved its
    chosen-minus-rejected difference along u, relative to where the reference had it.

    0 at initialisation, hidden-state units, unbounded both ways; equals n·``pars_rat``
    without the division (so no blow-up for small n, but pairs with large n weigh more).
    This is the projection of the shift ``delta = d_π − d_ref`` used in ReprPO's InnerPO
    loss.
    """
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps, p)
    return g.para - g.ref_norm


def _l1(x: Tensor) -> Tensor:
    return x.abs().sum(-1)


def para(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS) -> Tensor:
    """symlog(s·‖u‖₁): the signed L1 size of the policy's parallel component, log-compressed.

    Source: ReprPO ``innerdpo.py`` at commit 351560d, ``para``: β·log(‖s·u‖₁ + eps), one of
    the journal's earlier align methods. Departure: the source takes the log of a magnitude,
    which rewards |s| whichever its sign (a policy that flips the preference scores as well
    as one that sharpens it); here the sign of s is kept (symlog), so the margin increases
    in s everywhere. Absolute (log1p(n·‖u‖₁) at initialisation). L1 norms depend on the
    basis, so orthogonal transforms change this margin.
    """
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps)
    return symlog(g.para * _l1(g.unit))


def orth(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS) -> Tensor:
    """−log1p(o²/n²): penalise the orthogonal remainder only, relative to the reference separation.

    Source: ReprPO ``innerdpo.py`` at commit 351560d, ``orth``: −β·log(‖o‖₁ + eps).
    Departures: log(o + eps) is −log(eps) ≈ +28 at initialisation (o = 0) with a 1/eps
    gradient as soon as o moves; and a norm has a kink at o = 0, where float noise in o
    (policy = reference up to rounding) would pick the gradient's direction at random. The
    squared Euclidean size relative to n² is smooth there: value 0 and gradient exactly 0
    at initialisation. At its maximum by design: it never rewards s; it only resists drift
    across u once another loss has moved the policy.
    """
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps)
    return -torch.log1p((g.orth * g.orth).sum(-1) / (g.ref_norm * g.ref_norm))


def para_orth(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS) -> Tensor:
    """[symlog(s·‖u‖₁) − log1p(‖o‖₁)] − [log1p(n·‖u‖₁) − log1p(0)]: policy log-odds of parallel
    over orthogonal minus the reference's, in L1 norms.

    Source: ReprPO ``innerdpo.py`` at commit 351560d, ``para_orth``: β·(logodds_π − logodds_ref)
    with logodds = sign·log1p(‖par‖₁) − sign·log1p(‖orth‖₁) (the reference has no orthogonal
    part). Departure: the parallel term keeps the sign of s (symlog instead of log1p of a
    magnitude), so anti-aligned policies are not rewarded. 0 at initialisation; increasing
    in s; not rotation invariant (L1).
    """
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps)
    l1u = _l1(g.unit)
    return symlog(g.para * l1u) - torch.log1p(_l1(g.orth)) - torch.log1p(g.ref_norm * l1u)


def para_orth2(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS) -> Tensor:
    """(s − n)·‖u‖₁ − ‖o‖₁: change of the L1 parallel size minus the L1 orthogonal size.

    Source: ReprPO ``innerdpo.py`` at commit 351560d, ``para_orth2``: β·[(‖par_π‖₁ − ‖par_ref‖₁)
    − (‖orth_π‖₁ − ‖orth_ref‖₁)] ("no ratios, no logs"); ‖orth_ref‖ = 0. Departure: signed
    parallel term (s·‖u‖₁ instead of |s|·‖u‖₁). 0 at initialisation; hidden-state units.
    """
    g = decompose(h_pc, h_pr, h_rc, h_rr, eps)
    return (g.para - g.ref_norm) * _l1(g.unit) - _l1(g.orth)


def direct_projection_log(
    h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, *, eps: float = EPS, p: float = 2.0
) -> Tensor:
    """symlog(s − n): ``direct_projection`` log-compressed, sign kept.

    Source: the journal's ``direct_projection_log`` run, after ReprPO ``innerdpo.py`` at
    commit 351560d, whose ``direct_projection`` was β·log(Σ_j |d_π,j·u_j| + eps), a log
    magnitude that grows whichever way d_π moves. Departure: the signed, reference-relative
    projection s − n is compressed instead, so the margin is 0 at initialisation and
    increases in s everywhere.
    """
    return symlog(direct_projection(h_pc, h_pr, h_rc, h_rr, eps=eps, p=p))


ALIGN_METHODS: dict[str, AlignFn] = {
    "para_signed": para_signed,
    "para_signed_log": para_signed_log,
    "para_orth_signed": para_orth_signed,
    "para_orth_signed_log": para_orth_signed_log,
    "logodds": logodds,
    "odds": odds,
    "pars_rat": pars_rat,
    "pars_rat_log": pars_rat_log,
    "stabilized_ratio": stabilized_ratio,
    "cosine_policy_margin": cosine_policy_margin,
    "cosine_cross_model": cosine_cross_model,
    "cosine_pref_direction": cosine_pref_direction,
    "direct_projection": direct_projection,
    "direct_projection_log": direct_projection_log,
    "para": para,
    "orth": orth,
    "para_orth": para_orth,
    "para_orth2": para_orth2,
}

#: Margins at a stationary point at initialisation (policy = reference): their gradient is
#: 0 on the first step by design; they act once another loss has moved the policy.
STATIONARY_AT_INIT = frozenset({"cosine_cross_model", "cosine_pref_direction", "orth"})

#: Margins that read sizes through the norm order p (``norm_p``; innerpo.inner.geometry
#: ``decompose``): their value changes with p. ``pars_rat``/``pars_rat_log`` take p too but
#: are ratios s/n of two sizes along u, which p scales alike, so p cannot change them; the
#: L1 methods (para, orth, para_orth, para_orth2) and the cosines do not take p.
NORM_ORDER_DEPENDENT = frozenset(
    {
        "para_signed",
        "para_signed_log",
        "para_orth_signed",
        "para_orth_signed_log",
        "logodds",
        "odds",
        "stabilized_ratio",
        "direct_projection",
        "direct_projection_log",
    }
)

#: Margins built only from inner products and Euclidean norms of the four states, which
#: an orthogonal transform of all four leaves unchanged (the L1-norm ones are not).
ROTATION_INVARIANT = frozenset(ALIGN_METHODS) - {"para", "para_orth", "para_orth2"}


def get_align_method(name: str) -> AlignFn:
    try:
        return ALIGN_METHODS[name]
    except KeyError:
        raise ValueError(f"unknown align method {name!r}; known: {', '.join(ALIGN_METHODS)}") from None
