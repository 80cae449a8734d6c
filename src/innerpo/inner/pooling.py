"""Reduce token-level hidden states ``[B, T, D]`` to one vector per row ``[B, D]``.

``mask`` marks the tokens to pool (the loop passes the *completion* mask, so prompts and
padding are excluded); any nonzero value counts as 1. Both left and right padding work,
since only the mask decides which positions are real.
"""

from __future__ import annotations

import torch
from torch import Tensor

SINK_THRESHOLD = 10.0
"""Suggested k for sink filtering: drop tokens whose norm exceeds 10 × the row's median.

Attention-sink tokens (often the first token or a delimiter) carry residual-stream norms
one to two orders of magnitude above ordinary tokens; a single one can dominate a mean
over a short completion. Ordinary tokens rarely exceed 3× the median, so 10 is a
conservative cut that leaves normal rows untouched.
"""


def _check(hidden: Tensor, mask: Tensor) -> Tensor:
    if hidden.dim() != 3 or mask.dim() != 2 or hidden.shape[:2] != mask.shape:
        raise ValueError(
            f"expected hidden [B, T, D] and mask [B, T], got {tuple(hidden.shape)} and {tuple(mask.shape)}"
        )
    return mask != 0


def sink_mask(hidden: Tensor, mask: Tensor, threshold: float = SINK_THRESHOLD) -> Tensor:
    """Bool [B, T]: ``mask`` minus tokens whose L2 norm > threshold × the row's median norm.

    The median is taken over the row's masked tokens only (lower median for even counts).
    Computed without gradient. A row is never emptied: if every masked token would be
    dropped (possible only for threshold < 1), the row keeps its original mask.
    """
    keep = _check(hidden, mask)
    if not threshold > 0:
        raise ValueError(f"sink threshold must be > 0 (a multiple of the median token norm), got {threshold}")
    with torch.no_grad():
        norms = torch.linalg.vector_norm(hidden.float(), dim=-1)  # [B, T]
        median = torch.nanmedian(norms.masked_fill(~keep, float("nan")), dim=1).values  # [B]; NaN for empty rows
        filtered = keep & ~(norms > threshold * median.unsqueeze(1))
        emptied = filtered.sum(1) == 0
        filtered = torch.where(emptied.unsqueeze(1), keep, filtered)
    return filtered


def masked_mean(hidden: Tensor, mask: Tensor, sink_threshold: float | None = None) -> Tensor:
    """Mean of ``hidden`` [B, T, D] over the positions where ``mask`` [B, T] is nonzero → [B, D].

    sink_threshold: None (default) keeps every masked token; k > 0 additionally drops
        tokens whose norm exceeds k × the row's median token norm (see :func:`sink_mask`,
        :data:`SINK_THRESHOLD` = 10 is a reasonable k).
    A row with an empty mask pools to zeros. Output dtype = input dtype; gradients flow to
    ``hidden`` only (the mask is treated as a constant).
    """
    keep = sink_mask(hidden, mask, sink_threshold) if sink_threshold is not None else _check(hidden, mask)
    w = keep.to(hidden.dtype).unsqueeze(-1)  # [B, T, 1]
    count = w.sum(1).clamp(min=1)
    return (hidden * w).sum(1) / count


def last_real_token(hidden: Tensor, mask: Tensor) -> Tensor:
    """The state at the last position where ``mask`` is nonzero, per row: [B, T, D] → [B, D].

    Works for right padding (``1 1 1 0 0``), left padding (``0 0 1 1 1``) and completion
    masks (``0 0 1 1 0``). Raises ValueError if a row has no nonzero position.
    """
    keep = _check(hidden, mask)
    if not bool(keep.any(1).all()):
        bad = (~keep.any(1)).nonzero().flatten().tolist()
        raise ValueError(f"last_real_token: rows {bad} have an all-zero mask")
    pos = torch.arange(hidden.shape[1], device=hidden.device)
    idx = torch.where(keep, pos, -1).argmax(1)  # [B], the largest real position
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]


def unit_tokens(hidden: Tensor, p: float = 2.0, eps: float = 1e-6) -> Tensor:
    """Each token's state divided by its p-norm (+ eps): [B, T, D] → [B, T, D], dtype kept.

    The research code's ``norm_before_reduce`` (ReprPO, ``innerdpo.py``: ``safe_norm(hs,
    p=p)`` per token before ``reduce_tokens_w_attention``): pooled states become means of
    unit vectors, so no token (an attention sink, a long-norm outlier) outweighs another.
    """
    norm = torch.linalg.vector_norm(hidden.float(), ord=p, dim=-1, keepdim=True)
    return (hidden.float() / (norm + eps)).to(hidden.dtype)
