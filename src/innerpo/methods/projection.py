"""Gradient projection onto the reference preference direction: `projgrad` and `projbp`.

Both train an output-level objective (DPO in the presets) and only *edit gradients*, so
that each LoRA-adapted module's output is pushed along the direction in which the
frozen reference already separates chosen from rejected completions.

Reference preference direction (per LoRA module, per pair)
----------------------------------------------------------
During the reference pass (adapter off, no grad) a forward hook pools each LoRA module's
output ``y`` [2B, T, D_out] over completion tokens (masked mean):

    ȳ_c, ȳ_r  = masked_mean(y)[:B], masked_mean(y)[B:]      chosen / rejected [B, D_out]
    d_ref     = ȳ_c − ȳ_r
    u         = d_ref / ‖d_ref‖                               per pair  [B, D_out]

A pair is *degenerate* when ‖d_ref‖ ≤ 1e-6·(‖ȳ_c‖ + ‖ȳ_r‖) (e.g. identical completions);
its u is the zero vector, and a zero u means "leave this gradient unchanged". The
*batch direction* used for weight gradients is the normalised mean of the non-degenerate
per-pair u over every micro-batch of the optimizer step; zero (module skipped) when no
pair is usable or the mean has norm ≤ 1e-6 (the pairs' directions cancel).

The projection rule (:func:`project_update`), sign convention
-------------------------------------------------------------
For a gradient vector g and a direction u (normalised inside), the update is Δ = −g and

    c   = Δ·u                                   signed parallel coefficient
    Δ'  = max(c, 0)·u + orth_scale·(Δ − c·u)    keep the parallel part only when c > 0
    g'  = −Δ'

so Δ'·u = max(c, 0) ≥ 0: the update never moves against u; the helpful parallel part
is kept unchanged, the harmful one removed exactly, and the orthogonal remainder is
scaled by ``orth_scale``. Optional clip: with ρ the root-mean-square norm of the
*original* nonzero update vectors in the same call (the r columns of one lora_B
gradient; the completion tokens of one module in projbp), each projected vector is
rescaled to norm ≤ ``proj_clip``·ρ. For a single vector ρ = ‖Δ‖, i.e. the cap is
proj_clip × its original norm. (A cap relative to each vector's own norm would never
bind, since the projection cannot lengthen a vector while orth_scale ≤ 1; this one
caps outlier columns / tokens, PPO-style.)

orth_scale ∈ [0, 1], default 0.5. At 1 the only change from plain training is removing
backward-pointing parallel parts, and a typical gradient's parallel share is about
1/√D_out, so the run is nearly DPO. At 0 every module's step is rank one along u.
0.5 gives the parallel part twice the relative weight of sideways motion. With AdamW a
global rescaling of the gradient is normalised away, so orth_scale acts through this
*relative* weighting, not as a step size.

projgrad (:class:`ProjGradMethod`): weight gradients, after backward
--------------------------------------------------------------------
A LoRA module computes y = W x + s·B A x (B: [D_out, r], A: [r, D_in]). Column j of
lora_B's gradient lives in the output space (an update ΔB[:, j] moves y by
s·ΔB[:, j]·(A x)_j), so every column is projected with the module's batch direction.
lora_A's gradient lives in the input space, and its effect on y (s·B·ΔA·x) is confined
to span(B). It is **left unchanged**. Projecting it would need u expressed through
B's pseudo-inverse, which is ill-conditioned near B = 0, the initial value. The
guarantee is per column: the columns of −∇B have no component against u. How far the
output moves along u also depends on the sign of (A x)_j, and AdamW's per-coordinate
scaling changes the step's direction, so the step follows u exactly only under SGD.

projbp (:class:`ProjBPMethod`): output gradients, during backprop
-----------------------------------------------------------------
During the policy forward, a tensor hook on each LoRA module's output edits the
incoming gradient ∂L/∂y [2B, T, D_out] token by token with the pair's own u, before it
reaches the module's own LoRA weights and everything upstream. Rejected half:
d = ȳ_c − ȳ_r grows along u when the chosen row moves along +u *or the rejected row
moves along −u*, so chosen rows (0..B−1) use +u and rejected rows (B..2B−1) use −u of
their pair. Only completion tokens are edited (u is defined by them). Prompt tokens have
identical reference states in both rows, a zero difference, i.e. degenerate, so their
gradients and padding gradients pass unchanged, as do degenerate pairs. The residual
stream's skip path is not a LoRA module output, so it is never edited. Only the
branches through adapted modules are.

Both methods need the LoRA modules' reference outputs every step, so
``cacheable_reference = False`` and the reference forward runs each micro-batch.

Metrics (means over the modules and the calls of one optimizer step):
``proj/parallel_norm`` ‖kept parallel part‖, ``proj/orth_norm`` ‖scaled orthogonal
part‖ (Frobenius per module / call), ``proj/kept_fraction`` ‖Δ'‖/‖Δ‖,
``proj/cos_before`` and ``proj/cos_after`` mean cosine of the update −g with the
helpful direction before and after, ``proj/dropped_share`` share of vectors whose
parallel part was removed (Δ·u < 0), ``proj/degenerate_share`` share of (module, pair)
directions that were degenerate; ``proj/clipped_share`` (proj_clip set) share of vectors
the clip shortened; ``proj/skipped_modules`` (projgrad) share of modules whose batch
direction was degenerate.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
from peft.tuners.lora import LoraLayer
from torch import Tensor, nn

from innerpo.data.batching import PairBatch
from innerpo.inner.geometry import safe_norm, upcast
from innerpo.inner.pooling import masked_mean
from innerpo.losses.base import LossInputs
from innerpo.losses.combined import CombinedLoss
from innerpo.losses.common import check_fraction, check_optional_positive
from innerpo.methods.base import OutputMethod
from innerpo.models.forward import ForwardOutput, forward_pairs

DIR_EPS = 1e-12
"""A direction with norm ≤ this (or non-finite) is degenerate: gradients are left unchanged."""
DEGENERATE_REL = 1e-6
"""A pair is degenerate when ‖ȳ_c − ȳ_r‖ ≤ DEGENERATE_REL·(‖ȳ_c‖ + ‖ȳ_r‖)."""


# --- pure functions ---------------------------------------------------------------


def _unit(u: Tensor) -> tuple[Tensor, Tensor]:
    """(û, valid): u normalised along the last dim, zero where degenerate; valid [..., 1]."""
    n = torch.linalg.vector_norm(u, dim=-1, keepdim=True)
    valid = torch.isfinite(n) & (n > DIR_EPS)
    safe = torch.where(valid, n, torch.ones_like(n))
    return torch.where(valid, u / safe, torch.zeros_like(u)), valid


def project_update(grad: Tensor, u: Tensor, orth_scale: float, clip: float | None = None) -> Tensor:
    """Project gradient vectors (last dim) against direction(s) ``u``; see the module docstring.

    Δ = −grad; c = Δ·û; Δ' = max(c, 0)·û + orth_scale·(Δ − c·û); optional clip to
    ``clip``·RMS‖Δ_i‖ (over the call's nonzero vectors); returns −Δ'.
    grad [..., D]; u broadcastable to grad, any norm (normalised here). Where u is zero,
    tiny (≤ DIR_EPS) or non-finite, the vector is returned unchanged (not clipped).
    Computed in float32 or wider; returned in grad's dtype.
    """
    return _project(grad, u, orth_scale, clip)[0]


def _project(grad: Tensor, u: Tensor, orth_scale: float, clip: float | None) -> tuple[Tensor, Tensor]:
    """(projected grad, clipped [...] bool): :func:`project_update` and which vectors the clip shortened."""
    delta = -upcast(grad)
    u_hat, valid = _unit(upcast(u).to(delta.dtype))
    c = (delta * u_hat).sum(-1, keepdim=True)
    orth = delta - c * u_hat
    new = c.clamp(min=0) * u_hat + orth_scale * orth
    clipped = torch.zeros(new.shape[:-1], dtype=torch.bool, device=new.device)
    if clip is not None:
        norms = torch.linalg.vector_norm(delta, dim=-1)
        count = (norms > 0).sum().clamp(min=1)
        cap = clip * torch.sqrt((norms * norms).sum() / count)
        new_norm = torch.linalg.vector_norm(new, dim=-1, keepdim=True)
        over = (new_norm > cap) & valid
        new = torch.where(over, new * (cap / new_norm.clamp(min=torch.finfo(new.dtype).tiny)), new)
        clipped = over.squeeze(-1).expand(new.shape[:-1])
    new = torch.where(valid, new, delta)
    return (-new).to(grad.dtype), clipped


def projection_stats(grad: Tensor, projected: Tensor, u: Tensor, clipped: Tensor | None = None) -> dict[str, Tensor]:
    """Detached diagnostics of one projection call (same shapes as :func:`project_update`)."""
    with torch.no_grad():
        delta, new = -upcast(grad), -upcast(projected)
        u_hat, valid = _unit(upcast(u).to(delta.dtype))
        valid = valid.squeeze(-1).expand(delta.shape[:-1])
        c_before = (delta * u_hat).sum(-1)
        c_after = (new * u_hat).sum(-1)
        n_before = safe_norm(delta)
        n_after = safe_norm(new)
        live = valid & (torch.linalg.vector_norm(delta, dim=-1) > 0)
        k = live.sum().clamp(min=1)
        orth = new - c_after.unsqueeze(-1) * u_hat
        return {
            "parallel_norm": torch.linalg.vector_norm(c_after),
            "orth_norm": torch.linalg.vector_norm(orth),
            "kept_fraction": torch.linalg.vector_norm(new) / safe_norm(delta.flatten()),
            "cos_before": ((c_before / n_before) * live).sum() / k,
            "cos_after": ((c_after / n_after) * live).sum() / k,
            "dropped_share": ((c_before < 0) & live).sum() / k,
            "clipped_share": (torch.zeros_like(live) if clipped is None else clipped & live).sum() / k,
        }


def preference_directions(pooled: Tensor) -> Tensor:
    """Per-pair reference preference directions: pooled [2B, D] → u [B, D].

    Rows 0..B−1 of ``pooled`` are chosen, B..2B−1 rejected (the forward_pairs layout).
    u = (ȳ_c − ȳ_r)/‖ȳ_c − ȳ_r‖ in float32; degenerate pairs (module docstring) get 0.
    """
    if pooled.dim() != 2 or pooled.shape[0] % 2:
        raise ValueError(f"expected pooled states [2B, D], got {tuple(pooled.shape)}")
    b = pooled.shape[0] // 2
    c, r = upcast(pooled[:b]), upcast(pooled[b:])
    d = c - r
    n = safe_norm(d)
    scale = torch.linalg.vector_norm(c, dim=-1) + torch.linalg.vector_norm(r, dim=-1)
    ok = torch.isfinite(n) & (n > DEGENERATE_REL * scale) & (n > math.sqrt(DIR_EPS))
    return torch.where(ok.unsqueeze(-1), d / n.unsqueeze(-1), torch.zeros_like(d))


def batch_direction(units: Tensor) -> Tensor:
    """Normalised mean of the non-degenerate rows of ``units`` [N, D] → [D]; zero when none
    is usable or their mean has norm ≤ DEGENERATE_REL (directions cancel)."""
    ok = torch.linalg.vector_norm(units, dim=-1) > 0
    if not bool(ok.any()):
        return torch.zeros_like(units[0])
    mean = units[ok].mean(0)
    n = torch.linalg.vector_norm(mean)
    return mean / n if n > DEGENERATE_REL else torch.zeros_like(mean)


def edit_output_grad(
    grad: Tensor, u: Tensor, completion_mask: Tensor, orth_scale: float, clip: float | None = None
) -> Tensor:
    """projbp's edit of ∂L/∂y for one module: grad [2B, T, D], per-pair u [B, D], mask [2B, T].

    Completion tokens of chosen row i are projected with +u_i, of rejected row B+i with
    −u_i (moving the rejected output along −u also grows ȳ_c − ȳ_r along u). Other
    tokens, and pairs with u = 0, are returned unchanged. The clip's RMS is over the
    completion tokens of the whole [2B, T] batch.
    """
    return _edit_output_grad(grad, u, completion_mask, orth_scale, clip)[0]


def _edit_output_grad(grad, u, completion_mask, orth_scale, clip) -> tuple[Tensor, dict[str, Tensor]]:
    if grad.dim() != 3 or grad.shape[0] != 2 * u.shape[0] or grad.shape[-1] != u.shape[-1]:
        raise ValueError(f"expected grad [2B, T, D] and u [B, D], got {tuple(grad.shape)} and {tuple(u.shape)}")
    keep = completion_mask.bool().to(grad.device)
    rows = torch.cat([u, -u]).to(grad.device)  # [2B, D]: chosen +u, rejected −u
    sel = grad[keep]  # [M, D]
    dirs = rows.unsqueeze(1).expand(-1, grad.shape[1], -1)[keep]  # [M, D]
    projected, clipped = _project(sel, dirs, orth_scale, clip)
    out = grad.clone()
    out[keep] = projected
    return out, projection_stats(sel, projected, dirs, clipped)


# --- hooks ------------------------------------------------------------------------


def lora_modules(model) -> dict[str, nn.Module]:
    """Name → every LoRA layer with a trainable lora_B (the modules whose outputs are used)."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and any(p.requires_grad for p in _lora_b_weights(module)):
            found[name] = module
    return found


def _lora_b_weights(module) -> list[nn.Parameter]:
    lora_b = getattr(module, "lora_B", None)
    if lora_b is None:
        return []
    return [lora_b[a].weight for a in module.active_adapters if a in lora_b]


@contextmanager
def forward_hooks(modules: dict[str, nn.Module], hook):
    """Register ``hook(name, module, args, output)`` on each module for one `with` block; always removed."""
    handles = [m.register_forward_hook(partial(hook, name)) for name, m in modules.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


# --- methods ----------------------------------------------------------------------


@dataclass
class ProjectionParams:
    orth_scale: float = 0.5
    """Projection: multiplier in [0, 1] of the update's part orthogonal to the preference direction (1 only drops the backward parallel part, 0 keeps motion along the direction alone)."""  # noqa: E501
    proj_clip: float | None = None
    """Projection: cap each projected gradient vector's norm at this multiple of the RMS norm of the original vectors in the same call (lora_B columns; completion tokens); None: off."""  # noqa: E501


class _ProjectionMethod(OutputMethod):
    """Shared part: reference pass with pooled LoRA-module outputs, then the policy pass."""

    cacheable_reference = False
    kind = ""

    def __init__(self, loss: CombinedLoss, params: ProjectionParams):
        super().__init__(loss)
        if loss.uses_hidden:
            raise ValueError(
                "projection methods train output-level losses only; set --method.hidden_loss none or "
                "--method.projection none"
            )
        check_fraction(params.orth_scale, self.kind, "orth_scale", "0.5")
        check_optional_positive(params.proj_clip, self.kind, "proj_clip")
        self.orth_scale = float(params.orth_scale)
        self.proj_clip = params.proj_clip
        self._window_stats: list[dict[str, Tensor]] = []  # per projection call, this optimizer step
        self._degenerate: list[Tensor] = []  # per (module, micro-batch): share of degenerate pairs

    def loss_inputs(self, model, batch: PairBatch) -> LossInputs:
        modules = lora_modules(model)
        if not modules:
            raise ValueError(f"{self.kind} needs a model with a trainable LoRA adapter (no LoRA layer found)")
        pooled: dict[str, Tensor] = {}

        def pool(name, module, args, output):
            pooled[name] = masked_mean(output, batch.completion_mask)

        with torch.no_grad(), model.disable_adapter(), forward_hooks(modules, pool):
            ref = forward_pairs(model, batch, stats=self.loss.reference_stats)
        units = {name: preference_directions(p) for name, p in pooled.items()}
        if torch.is_grad_enabled():
            self._degenerate += [(torch.linalg.vector_norm(u, dim=-1) == 0).float().mean() for u in units.values()]
        policy = self._policy_forward(model, batch, {n: modules[n] for n in units}, units)
        return LossInputs(policy.chosen, policy.rejected, ref.chosen.detach(), ref.rejected.detach())

    def _policy_forward(self, model, batch, modules, units) -> ForwardOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def _metrics(self) -> dict[str, float]:
        out = {}
        if self._window_stats:
            keys = [k for k in self._window_stats[0] if k != "clipped_share" or self.proj_clip is not None]
            out = {f"proj/{k}": torch.stack([s[k] for s in self._window_stats]).mean().item() for k in keys}
        if self._degenerate:
            out["proj/degenerate_share"] = torch.stack(self._degenerate).mean().item()
        self._window_stats, self._degenerate = [], []
        return out


class ProjGradMethod(_ProjectionMethod):
    """projgrad: after backward, each lora_B gradient column is projected with the module's
    batch direction (module docstring); lora_A gradients are left as they are."""

    kind = "projgrad"
    title = (
        "DPO; LoRA-B gradient columns projected onto each module's reference chosen−rejected direction after backward"
    )

    def __init__(self, loss: CombinedLoss, params: ProjectionParams):
        super().__init__(loss, params)
        self._units: dict[str, list[Tensor]] = {}
        self._targets: dict[str, nn.Module] = {}  # a plain dict: not registered as submodules

    def _policy_forward(self, model, batch, modules, units) -> ForwardOutput:
        if torch.is_grad_enabled():
            for name, u in units.items():
                self._units.setdefault(name, []).append(u)
            self._targets = modules
        return forward_pairs(model, batch, stats=self.loss.policy_stats)

    def batch_directions(self) -> dict[str, Tensor]:
        """Module name → batch direction [D_out] over this step's micro-batches so far."""
        return {name: batch_direction(torch.cat(us)) for name, us in self._units.items()}

    def after_backward(self, model) -> dict[str, float]:
        skipped = []
        for name, u in self.batch_directions().items():
            skipped.append(torch.tensor(float(not bool(u.any()))))
            if not bool(u.any()):
                continue
            for weight in _lora_b_weights(self._targets[name]):
                if weight.grad is None:
                    continue
                cols = weight.grad.T  # [r, D_out]: one output-space vector per column of B
                u_dev = u.to(cols.device)
                new, clipped = _project(cols, u_dev, self.orth_scale, self.proj_clip)
                self._window_stats.append(projection_stats(cols, new, u_dev, clipped))
                weight.grad.copy_(new.T)
        self._units = {}
        metrics = self._metrics()
        if skipped:
            metrics["proj/skipped_modules"] = torch.stack(skipped).mean().item()
        return metrics


class ProjBPMethod(_ProjectionMethod):
    """projbp: during the policy forward, a tensor hook on each LoRA module's output edits
    ∂L/∂y with :func:`edit_output_grad` as it flows back (module docstring)."""

    kind = "projbp"
    title = "DPO; each LoRA module's output gradient projected onto the reference preference direction during backprop"

    def _policy_forward(self, model, batch, modules, units) -> ForwardOutput:
        if not torch.is_grad_enabled():
            return forward_pairs(model, batch, stats=self.loss.policy_stats)

        def attach(name, module, args, output):
            if isinstance(output, Tensor) and output.requires_grad:
                output.register_hook(partial(self._edit, units[name], batch.completion_mask))

        with forward_hooks(modules, attach):
            return forward_pairs(model, batch, stats=self.loss.policy_stats)

    def _edit(self, u: Tensor, mask: Tensor, grad: Tensor) -> Tensor:
        new, stats = _edit_output_grad(grad, u, mask, self.orth_scale, self.proj_clip)
        self._window_stats.append(stats)
        return new

    def after_backward(self, model) -> dict[str, float]:
        return self._metrics()
