"""``supr``: keep the hidden-state coordinates that rose between consecutive layers, as
read through the output head ("suppressed activations" in ReprPO).

Source: ReprPO (wassname), ``reprpo/interventions/transforms/supressed.py``, motivated by
suppression/prediction neurons (Gurnee et al. 2024, arXiv:2401.12181; Stolfo et al.
2024, arXiv:2406.19384): late layers push some token logits down, and the hypothesis is
that representations the model keeps internal live in those parts of the residual stream.

What it computes, for collected layers l_0 < l_1 < … < l_{L−1} (consecutive in the
collected list, not necessarily adjacent in the model), per row, at the row's last real
completion token x_i [B, D] (:func:`~innerpo.inner.pooling.last_real_token`):

    Δ_i  = x_i − x_{i−1}                 change of the residual stream between collected layers
    z_i  = Δ_i Wᵀ                         the change in logits the output head W [V, D] reads
    Δ̃_i  = z_i (W⁺)ᵀ = Δ_i P              pulled back to hidden space; P = W⁺W [D, D] projects
                                          onto the row space of W
    m_i  = 1[Δ̃_i > threshold]             per-coordinate mask [B, D], computed without gradient
    out_i = states_i ⊙ m_i                for i = 1 … L−1 (the first collected layer is dropped)

``states_i`` are whatever the loss will use (usually the pooled states [B, D]); the mask
comes from the last real token only and is broadcast over the row. Gradients flow
through ``states_i`` on the kept coordinates.

Read this honestly: when W has full column rank (V ≥ D and no degenerate directions,
the normal case for LM heads), P = I and the mask reduces to "coordinates whose value
increased by more than ``threshold`` between consecutive collected layers"; the head
then plays no role. It matters only when W is rank-deficient, or when a projector is
passed that keeps fewer directions (``head_projector(W, rank=k)`` keeps the top-k right
singular directions, the part of the stream the head reads most strongly). W is applied
to the raw residual stream (no final norm), as in ReprPO. Differences from ReprPO: the
last *real* token per row (ReprPO took position −1, which is padding for right-padded
rows), and an explicit projector instead of a dense pseudo-inverse.

Threshold: ReprPO cuts at a fixed 0.1 in hidden-state units, which keeps nothing on a
model whose states are small (``tiny-random``: every rise is below 0.1, all four states
become 0 and the hidden term has no gradient) and almost every rising coordinate on a model
whose states are large. ``threshold=None`` (the default here) cuts each row at
0.1 × the RMS of its own pulled-back change (:data:`SUPR_RELATIVE`), which is scale free;
a number gives ReprPO's absolute cut.

Each of the four states (policy/reference × chosen/rejected) gets its own mask when
``supr`` computes them from the states it is given, as in ReprPO. Then a training step
moves the policy's masks (its loss is not even continuous in the adapter); the method
layer (:mod:`innerpo.methods.hidden`) therefore computes the masks from the *reference*
states and passes them with ``masks=``, so policy and reference states of a pair keep the
same coordinates (chosen side: the reference chosen state's mask; rejected side: the
reference rejected state's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from innerpo.params import option


@dataclass
class SuprParams:
    supr_threshold: float | None = option(None, read_when="with transform supr")
    """supr: keep coordinates whose rise between collected layers exceeds this, in hidden-state units; None: 0.1 × the RMS of that row's rise (scale free; ReprPO's fixed 0.1 suits only models whose states are O(1))."""


SUPR_THRESHOLD = 0.1
"""ReprPO's cut on the pulled-back change, in hidden-state units."""

SUPR_RELATIVE = 0.1
"""Default cut: this fraction of the RMS (over coordinates) of each row's pulled-back change."""


def head_projector(lm_head_weight: Tensor, rank: int | None = None, rtol: float | None = None) -> Tensor:
    """P = W⁺W [D, D], the orthogonal projector onto the row space of W [V, D] (float32).

    rank: keep only the top-``rank`` right singular directions (None: all directions
        with singular value > rtol · σ_max, rtol defaulting to max(V, D) · float32 eps,
        the pseudo-inverse's cutoff). Compute once per model and pass it to :func:`supr`.
    """
    w = lm_head_weight.detach().float()
    if w.dim() != 2:
        raise ValueError(f"lm_head_weight must be [V, D], got {tuple(w.shape)}")
    _, sv, vh = torch.linalg.svd(w, full_matrices=False)  # vh [k, D]
    if rank is None:
        tol = (rtol if rtol is not None else max(w.shape) * torch.finfo(torch.float32).eps) * sv[0]
        rank = int((sv > tol).sum())
    if not 1 <= rank <= vh.shape[0]:
        raise ValueError(f"head_projector: rank must be in [1, {vh.shape[0]}], got {rank}")
    v = vh[:rank]
    return v.T @ v


def supr_masks(
    last_token_states: Sequence[Tensor],
    lm_head_weight: Tensor | None = None,
    *,
    projector: Tensor | None = None,
    threshold: float | None = None,
) -> list[Tensor]:
    """Bool masks [B, D] for collected layers 1 … L−1 (see the module docstring).

    threshold: absolute cut in hidden-state units (ReprPO: 0.1), or None for
        :data:`SUPR_RELATIVE` × the RMS of each row's pulled-back change.

    last_token_states: per collected layer, in depth order, [B, D] (last real completion
        token of each row). Give ``projector`` (from :func:`head_projector`) or
        ``lm_head_weight`` [V, D] (the projector is then computed here, an SVD per call).
    """
    if len(last_token_states) < 2:
        raise ValueError("supr needs at least two consecutive collected layers")
    if projector is None:
        if lm_head_weight is None:
            raise ValueError("supr needs lm_head_weight or a precomputed projector")
        projector = head_projector(lm_head_weight)
    masks = []
    with torch.no_grad():
        for prev, cur in zip(last_token_states[:-1], last_token_states[1:]):
            if prev.shape != cur.shape or prev.dim() != 2:
                raise ValueError(
                    f"supr: expected [B, D] states of one shape, got {tuple(prev.shape)}, {tuple(cur.shape)}"
                )
            delta = cur.float() - prev.float()
            pulled = delta @ projector.to(delta.device)  # P symmetric
            cut = SUPR_RELATIVE * pulled.pow(2).mean(-1, keepdim=True).sqrt() if threshold is None else threshold
            masks.append(pulled > cut)
    return masks


def supr(
    states: Sequence[Tensor],
    lm_head_weight: Tensor | None = None,
    *,
    last_token_states: Sequence[Tensor] | None = None,
    projector: Tensor | None = None,
    threshold: float | None = None,
    masks: Sequence[Tensor] | None = None,
) -> list[Tensor]:
    """Suppressed states for collected layers 1 … L−1: ``states[i] * mask_i``.

    states: per collected layer, in depth order, [B, D] (the states the loss will use).
    last_token_states: the same layers at each row's last real completion token, [B, D];
        defaults to ``states`` (right when ``states`` already are last-token states).
    lm_head_weight / projector / threshold: see :func:`supr_masks`.
    masks: precomputed masks (length L − 1) to use instead.
    Returns L − 1 tensors, in the dtype of ``states``; index i − 1 belongs to layer i.
    """
    if masks is None:
        masks = supr_masks(
            last_token_states if last_token_states is not None else states,
            lm_head_weight,
            projector=projector,
            threshold=threshold,
        )
    if len(masks) != len(states) - 1:
        raise ValueError(f"supr: {len(states)} layers need {len(states) - 1} masks, got {len(masks)}")
    return [s * m.to(s.dtype) for s, m in zip(states[1:], masks)]
