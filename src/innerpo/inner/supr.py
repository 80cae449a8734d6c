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

Each of the four states (policy/reference × chosen/rejected) gets its own mask by
default, as in ReprPO; pass ``masks=`` (e.g. computed from the reference states with
:func:`supr_masks`) to select the same coordinates for all four.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

SUPR_THRESHOLD = 0.1
"""ReprPO's cut on the pulled-back change, in hidden-state units."""


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
    threshold: float = SUPR_THRESHOLD,
) -> list[Tensor]:
    """Bool masks [B, D] for collected layers 1 … L−1 (see the module docstring).

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
                raise ValueError(f"supr: expected [B, D] states of one shape, got {tuple(prev.shape)}, {tuple(cur.shape)}")
            delta = cur.float() - prev.float()
            pulled = delta @ projector.to(delta.device)  # P symmetric
            masks.append(pulled > threshold)
    return masks


def supr(
    states: Sequence[Tensor],
    lm_head_weight: Tensor | None = None,
    *,
    last_token_states: Sequence[Tensor] | None = None,
    projector: Tensor | None = None,
    threshold: float = SUPR_THRESHOLD,
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
