"""Trainable maps applied to all four hidden states (pooled or token-level) before a loss.

Every transform is an ``nn.Module`` acting on the last dimension, ``[..., D] → [..., D]``,
so a loss that owns one (see :class:`LayerTransforms`) trains it with the adapter.
Parameters live in float32; inputs of lower precision are upcast for the map and the
result is cast back to the input dtype.

=============  ==============================================  ==========  ===================
name           map                                             orthogonal  at initialisation
=============  ==============================================  ==========  ===================
``none``       identity                                        yes         identity
``ether``      block-diagonal Householder reflections           yes         a fixed reflection
``etherplus``  block-diagonal I − ûûᵀ + v̂v̂ᵀ (ETHER+)         no          identity (v = u)
``oft``        block-diagonal Cayley rotations (OFT)            yes         identity
``hra``        product of Householder reflections (HRA)         yes         identity (paired)
``ortho``      dense orthogonal matrix via torch parametrization yes         identity
=============  ==============================================  ==========  ===================

Note for anyone choosing a transform: every InnerDPO margin, PrefVec and the
reroute/retain loss depend on the four states only through inner products and norms of
their differences, and the same transform is applied to all four, so an *orthogonal*
transform leaves their value and gradient unchanged (exactly, at any parameter value;
the transform's own parameters then get zero gradient). Orthogonal transforms change
only coordinate-dependent objectives: the rank loss (softmax over dimensions), ``supr``
masks, and sink filtering is unaffected (norm based). ``etherplus`` is not orthogonal and
does change the geometry; since it also transforms the reference states, it could shrink
‖d_ref‖ to inflate ratio margins, which the scale-free margins (``pars_rat``,
``logodds``, cosines) resist only to uniform scaling.

The suppressed-activation selection (``supr``) is not a per-vector transform; see
:mod:`innerpo.inner.supr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import Tensor, nn

from innerpo.inner.hidden_inputs import HiddenInputs, StateQuad
from innerpo.params import option


@dataclass
class TransformParams:
    transform_lr_scale: float = option(10.0, read_when="with transform ether, etherplus, oft or hra")
    """Trainable transforms (ether, etherplus, oft, hra): their parameters take steps this many times larger than the adapter's (a reparametrization, see innerpo.inner.transforms.scale_steps); at 1 they barely move in a short run."""


def _unit(v: Tensor, eps: float = 1e-12) -> Tensor:
    return v / torch.sqrt((v * v).sum(-1, keepdim=True) + eps)


class HiddenTransform(nn.Module):
    """Base class: ``forward(x [..., D]) -> [..., D]``, linear in x."""

    orthogonal: ClassVar[bool] = True

    def __init__(self, dim: int):
        super().__init__()
        if dim <= 0:
            raise ValueError(f"transform dim must be positive, got {dim}")
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"{type(self).__name__}: expected last dim {self.dim}, got {tuple(x.shape)}")
        return self._map(x.float() if x.dtype != torch.float64 else x).to(x.dtype)

    def _map(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def matrix(self) -> Tensor:
        """The [D, D] matrix M with forward(x) = x @ M.T (for tests and inspection)."""
        eye = torch.eye(self.dim, dtype=torch.float32, device=self._device())
        return self._map(eye).T

    def _device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")


class NoneTransform(HiddenTransform):
    """Identity; no parameters."""

    def _map(self, x: Tensor) -> Tensor:
        return x


class ETHERTransform(HiddenTransform):
    """ETHER (Bini et al. 2024, arXiv:2405.20271): block-diagonal hyperplane reflections.

    D is split into ``n_blocks`` equal blocks of size m = D / n_blocks (D must divide);
    each block b has its own map H_b:

    - ``ether``:     H_b = I − 2 ûûᵀ, a Householder reflection (orthogonal, det −1). A single
      reflection cannot be the identity, so at initialisation this is a fixed random
      reflection: an isometry, not an identity (see the module note: margins built from
      inner products are unaffected).
    - ``etherplus``: H_b = I − ûûᵀ + v̂v̂ᵀ (ETHER+, relaxes orthogonality; ‖H_b − I‖ ≤ 2).
      Initialised with v = u, so H_b = I exactly.
    - ``oft``:       H_b = (I − A)⁻¹(I + A), A = (S − Sᵀ)/2 skew (Cayley; OFT, Qiu et al. 2023,
      arXiv:2306.07280). Orthogonal for every S; S = 0 at initialisation, so H_b = I.

    Args: dim D; n_blocks ≥ 1 dividing D (default 4); variant as above.
    Parameters: ``u`` (and ``v``) [n_blocks, m], or ``S`` [n_blocks, m, m] for oft.
    """

    VARIANTS = ("ether", "etherplus", "oft")

    def __init__(self, dim: int, n_blocks: int = 4, variant: str = "ether"):
        super().__init__(dim)
        if variant not in self.VARIANTS:
            raise ValueError(f"ETHER variant must be one of {self.VARIANTS}, got {variant!r}")
        if n_blocks < 1 or dim % n_blocks:
            raise ValueError(f"ETHER: n_blocks={n_blocks} must be ≥ 1 and divide dim={dim}")
        self.variant = variant
        self.n_blocks = n_blocks
        m = dim // n_blocks
        if variant == "oft":
            self.S = nn.Parameter(torch.zeros(n_blocks, m, m))
        else:
            u = torch.randn(n_blocks, m) / m**0.5
            self.u = nn.Parameter(u)
            if variant == "etherplus":
                self.v = nn.Parameter(u.clone())

    @property
    def orthogonal(self) -> bool:  # type: ignore[override]
        return self.variant != "etherplus"

    def _map(self, x: Tensor) -> Tensor:
        xb = x.reshape(*x.shape[:-1], self.n_blocks, self.dim // self.n_blocks)
        if self.variant == "oft":
            m = self.S.shape[-1]
            a = 0.5 * (self.S - self.S.transpose(1, 2))
            eye = torch.eye(m, dtype=a.dtype, device=a.device).expand_as(a)
            q = torch.linalg.solve(eye - a, eye + a)  # [nb, m, m]
            y = torch.einsum("...bm,bnm->...bn", xb, q.to(xb.dtype))
        else:
            u = _unit(self.u).to(xb.dtype)
            if self.variant == "ether":
                y = xb - 2 * (xb * u).sum(-1, keepdim=True) * u
            else:
                v = _unit(self.v).to(xb.dtype)
                y = xb - (xb * u).sum(-1, keepdim=True) * u + (xb * v).sum(-1, keepdim=True) * v
        return y.reshape(x.shape)


class HRATransform(HiddenTransform):
    """HRA (Yuan et al. 2024, arXiv:2405.17484): a product of Householder reflections.

    - ``orthonormalize=True`` (default): two rank-r reflections
      W = (I − 2 Q_a Q_aᵀ)(I − 2 Q_b Q_bᵀ), where Q_a, Q_b [D, r] are the QR-orthonormalised
      parameters ``a``, ``b`` (HRA's Gram-Schmidt variant: each factor is the product of r
      reflections in mutually orthogonal directions). Initialised with b = a, so W = I;
      exactly orthogonal for any parameters.
    - ``orthonormalize=False``: the plain chain H(u_1)…H(u_r), H(u) = I − 2ûûᵀ, with HRA's
      symmetric initialisation (u_{2k} = u_{2k+1}, so pairs cancel and W = I); r must be even.

    Args: dim D; r in [1, D] (default 8). Parameters: ``a``, ``b`` [D, r] or ``u`` [D, r].
    """

    def __init__(self, dim: int, r: int = 8, orthonormalize: bool = True):
        super().__init__(dim)
        if not 1 <= r <= dim:
            raise ValueError(f"HRA: r must be in [1, {dim}], got {r}")
        self.r = r
        self.orthonormalize = orthonormalize
        if orthonormalize:
            a = torch.randn(dim, r)
            self.a = nn.Parameter(a)
            self.b = nn.Parameter(a.clone())
        else:
            if r % 2:
                raise ValueError(f"HRA without orthonormalize needs an even r (paired identity init), got {r}")
            half = torch.randn(dim, r // 2)
            self.u = nn.Parameter(torch.repeat_interleave(half, 2, dim=1))

    def _map(self, x: Tensor) -> Tensor:
        if self.orthonormalize:
            for p in (self.b, self.a):  # W = R_a R_b; for row vectors x @ W.T = x @ R_b @ R_a (R symmetric)
                q = torch.linalg.qr(p, mode="reduced").Q.to(x.dtype)
                x = x - 2 * (x @ q) @ q.T
            return x
        u = _unit(self.u.T).to(x.dtype)  # [r, D]
        for i in range(self.r - 1, -1, -1):  # x @ (H_1 … H_r).T = x @ H_r … H_1
            x = x - 2 * (x * u[i]).sum(-1, keepdim=True) * u[i]
        return x


class OrthoTransform(HiddenTransform):
    """A dense orthogonal D×D map via ``torch.nn.utils.parametrizations.orthogonal``.

    orthogonal_map: ``matrix_exp`` (default), ``cayley`` or ``householder``. The weight is
    set to the identity before parametrizing, so the map starts as the identity; the
    trainable tensor is ``linear.parametrizations.weight.original``. Cost: one D×D matrix
    function per forward.
    """

    def __init__(self, dim: int, orthogonal_map: str = "matrix_exp"):
        super().__init__(dim)
        if orthogonal_map not in ("matrix_exp", "cayley", "householder"):
            raise ValueError(f"ortho: orthogonal_map must be matrix_exp, cayley or householder, got {orthogonal_map!r}")
        linear = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            linear.weight.copy_(torch.eye(dim))
        self.linear = nn.utils.parametrizations.orthogonal(linear, orthogonal_map=orthogonal_map)

    def _map(self, x: Tensor) -> Tensor:
        return x @ self.linear.weight.to(x.dtype).T


TRANSFORMS: dict[str, Callable[..., HiddenTransform]] = {
    "none": NoneTransform,
    "ether": lambda dim, **kw: ETHERTransform(dim, variant="ether", **kw),
    "etherplus": lambda dim, **kw: ETHERTransform(dim, variant="etherplus", **kw),
    "oft": lambda dim, **kw: ETHERTransform(dim, variant="oft", **kw),
    "hra": HRATransform,
    "ortho": OrthoTransform,
}


class _Scaled(nn.Module):
    """Parametrization value = k · stored; the stored tensor starts at value / k."""

    def __init__(self, k: float):
        super().__init__()
        self.k = k

    def forward(self, stored: Tensor) -> Tensor:
        return self.k * stored

    def right_inverse(self, value: Tensor) -> Tensor:
        return value / self.k


def scale_steps(transform: nn.Module, k: float) -> nn.Module:
    """Make AdamW's steps on `transform`'s own parameters k times larger, without an optimizer
    parameter group: each parameter p becomes k·p' with p' trained (Adam's step on p' is
    ~lr whatever the gradient's scale, so p moves ~k·lr). The map is unchanged at the start.

    Written by hand because the loop has one AdamW group for adapter and transforms;
    ``torch.nn.utils.parametrize`` does the bookkeeping. Parameters already under a
    parametrization (``ortho``'s) are left as they are.
    """
    if k == 1.0:
        return transform
    for module in list(transform.modules()):
        if nn.utils.parametrize.is_parametrized(module) or isinstance(module, nn.utils.parametrize.ParametrizationList):
            continue
        for name, _ in list(module.named_parameters(recurse=False)):
            nn.utils.parametrize.register_parametrization(module, name, _Scaled(k))
    return transform


def make_transform(name: str, dim: int, **kwargs) -> HiddenTransform:
    """One transform by name (see the module table); kwargs go to its constructor."""
    if name == "supr":
        raise ValueError(
            "'supr' is not a per-vector transform: it needs consecutive layers and the output head; "
            "call innerpo.inner.supr.supr on the collected states instead"
        )
    try:
        factory = TRANSFORMS[name]
    except KeyError:
        raise ValueError(
            f"unknown transform {name!r}; known: {', '.join(TRANSFORMS)} (and 'supr', applied by the loop)"
        ) from None
    return factory(dim, **kwargs)


class LayerTransforms(nn.Module):
    """One transform per collected layer (layers have different geometry).

    ``LayerTransforms("ether", ["8", "12"], dim=576, n_blocks=4)``; ``self(layer, x)``
    applies that layer's transform; ``apply(layer, quad)`` maps all four states.
    Layer names may contain dots (they are escaped for the ModuleDict).
    """

    def __init__(self, name: str, layers: list[str], dim: int, **kwargs):
        super().__init__()
        if not layers:
            raise ValueError("LayerTransforms needs at least one layer name")
        self.kind = name
        self.by_layer = nn.ModuleDict({self._key(k): make_transform(name, dim, **kwargs) for k in layers})

    @staticmethod
    def _key(layer: str) -> str:
        return "L_" + str(layer).replace(".", "__")

    def forward(self, layer: str, x: Tensor) -> Tensor:
        key = self._key(layer)
        if key not in self.by_layer:
            raise KeyError(f"no transform for layer {layer!r}; this LayerTransforms was built for other layers")
        return self.by_layer[key](x)

    def apply(self, layer: str, quad: StateQuad) -> StateQuad:
        return StateQuad(*(self(layer, h) for h in quad))


def apply_transforms(transform: LayerTransforms | HiddenTransform | None, hidden: HiddenInputs) -> HiddenInputs:
    """Map all four states of every layer (pooled, and tokens if present).

    A single :class:`HiddenTransform` is shared by every layer; a :class:`LayerTransforms`
    uses each layer's own. ``None`` returns ``hidden`` unchanged. Pooling commutes with
    these linear maps (masked mean is linear), so transforming pooled states equals pooling
    transformed tokens (exactly, without sink filtering; with it, for norm-preserving maps).
    """
    if transform is None:
        return hidden

    def f(layer: str, quad: StateQuad) -> StateQuad:
        if isinstance(transform, LayerTransforms):
            return transform.apply(layer, quad)
        return StateQuad(*(transform(h) for h in quad))

    tokens = None if hidden.tokens is None else {k: f(k, q) for k, q in hidden.tokens.items()}
    return HiddenInputs(
        pooled={k: f(k, q) for k, q in hidden.pooled.items()},
        tokens=tokens,
        chosen_mask=hidden.chosen_mask,
        rejected_mask=hidden.rejected_mask,
    )
