"""The geometry every hidden-state margin is built from.

For one preference pair at one layer, with pooled states ``[B, D]``:

    d_ref = h_rc − h_rr          reference chosen-minus-rejected difference
    n     = ‖d_ref‖              its (safe) norm
    u     = d_ref / n            the reference preference direction
    d_π   = h_pc − h_pr          the policy's chosen-minus-rejected difference
    s     = d_π · u              signed scalar projection ("parallel part" s·u)
    o     = ‖d_π − s·u‖          norm of the orthogonal remainder

At initialisation (adapter off, so policy = reference) d_π = d_ref, s = n, o = 0.

Norms are *safe*: ``sqrt(Σx² + eps)`` with ``eps`` inside the square root, so the
value is ≥ sqrt(eps) and the gradient is exactly 0 (not NaN) at x = 0. Everything is
computed in float32 (bfloat16/float16 inputs are upcast; float64 stays float64), so
margins come back in float32 and gradients flow back to the inputs in their dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

EPS = 1e-12
"""Added to the squared norm inside sqrt: safe norms are ≥ 1e-6 and have zero gradient at 0."""


def upcast(x: Tensor) -> Tensor:
    """float16/bfloat16 → float32; other dtypes unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def safe_norm(x: Tensor, dim: int = -1, keepdim: bool = False, eps: float = EPS) -> Tensor:
    """L2 norm ``sqrt(Σ x² + eps)`` over ``dim``: finite value and gradient everywhere."""
    return torch.sqrt((x * x).sum(dim=dim, keepdim=keepdim) + eps)


def safe_pnorm(x: Tensor, p: float = 2.0, dim: int = -1, eps: float = EPS) -> Tensor:
    """p-norm ``(Σ (x² + eps)^(p/2))^(1/p)`` over ``dim`` (p ≥ 1): smooth, finite value and gradient
    everywhere, zero gradient at x = 0; p = 2 is :func:`safe_norm` (eps inside the sqrt)."""
    if p == 2:
        return safe_norm(x, dim=dim, eps=eps)
    return ((x * x + eps) ** (p / 2)).sum(dim) ** (1.0 / p)


def safe_cosine(a: Tensor, b: Tensor, dim: int = -1, eps: float = EPS) -> Tensor:
    """cos(a, b) with safe norms; 0 (with finite gradient) when either vector is 0."""
    return (a * b).sum(dim) / (safe_norm(a, dim, eps=eps) * safe_norm(b, dim, eps=eps))


def symlog(x: Tensor) -> Tensor:
    """sign(x)·log1p(|x|), written so the gradient is 1/(1+|x|) everywhere, including x = 0.

    (The literal ``x.sign() * x.abs().log1p()`` has gradient 0 at x = 0 in autograd.)
    """
    pos = torch.log1p(x.clamp(min=0))
    neg = torch.log1p((-x).clamp(min=0))
    return torch.where(x >= 0, pos, -neg)


@dataclass(frozen=True)
class PrefGeometry:
    """Decomposition of d_π against d_ref for a batch; see the module docstring.

    d_pi, d_ref, unit, orth: [B, D]; ref_norm, para, orth_norm: [B] (float32 or float64).
    """

    d_pi: Tensor
    d_ref: Tensor
    ref_norm: Tensor
    unit: Tensor
    para: Tensor
    orth: Tensor
    orth_norm: Tensor


def decompose(h_pc: Tensor, h_pr: Tensor, h_rc: Tensor, h_rr: Tensor, eps: float = EPS, p: float = 2.0) -> PrefGeometry:
    """Split the policy's chosen-minus-rejected difference along / across the reference's.

    Args: four pooled states [B, D] (policy chosen, policy rejected, reference chosen,
    reference rejected). Reference states are used as given (the loop passes them
    without gradient; trainable transforms may give them one, which is intended).

    p: the norm order of the *sizes* (ReprPO InnerDPO's ``p``). The split itself is always
    the Euclidean (orthogonal) projection on u = d_ref/‖d_ref‖₂; for p ≠ 2 the sizes are
    measured in the p-norm: n = ‖d_ref‖_p, para = s·‖u‖_p (the signed p-size of the
    parallel part s·u) and orth_norm = ‖d_π − s·u‖_p, so that still para = n and
    orth_norm ≈ 0 at initialisation. Departure: ReprPO (``vast2`` ``innerdpo.py``,
    ``innerdpo_loss``) divides d_ref by its p-norm and projects on that vector, which for
    p ≠ 2 is not a projection (at initialisation its orthogonal part is not 0 and
    ``pars_rat`` is ‖d_ref‖₂²/‖d_ref‖₁² − 1 instead of 0).
    """
    h_pc, h_pr, h_rc, h_rr = (upcast(h) for h in (h_pc, h_pr, h_rc, h_rr))
    if not (h_pc.shape == h_pr.shape == h_rc.shape == h_rr.shape) or h_pc.dim() != 2:
        raise ValueError(
            "expected four pooled states of the same shape [B, D], got "
            f"{tuple(h_pc.shape)}, {tuple(h_pr.shape)}, {tuple(h_rc.shape)}, {tuple(h_rr.shape)}"
        )
    d_pi = h_pc - h_pr
    d_ref = h_rc - h_rr
    ref_norm = safe_norm(d_ref, eps=eps)
    unit = d_ref / ref_norm.unsqueeze(-1)
    para = (d_pi * unit).sum(-1)
    orth = d_pi - para.unsqueeze(-1) * unit
    if p == 2:
        return PrefGeometry(d_pi, d_ref, ref_norm, unit, para, orth, safe_norm(orth, eps=eps))
    size = safe_pnorm(unit, p, eps=eps)  # ‖u‖_p: Euclidean lengths → p-sizes along u
    return PrefGeometry(d_pi, d_ref, ref_norm * size, unit, para * size, orth, safe_pnorm(orth, p, eps=eps))
