"""Attention over a prefix every row shares, kept once instead of copied into each row.

Few-shot STaR prompts are mostly one shared prefix (instruction and exemplars: ~230 of
~270 tokens). Copied into each of 48 rows, its keys and values are most of the KV cache,
and every decode step reads all of it (memory-bound: SDPA was 18% of the generator's time
after the cache stopped being concatenated). Here the prefix's keys and values stay one
row `[1, kv_heads, P, head_dim]` and each layer's attention runs

    scores = [q·K_prefixᵀ, q·K_ownᵀ] · scale      (own part masked: padding, causality)
    out    = softmax(scores)[:, :P] · V_prefix + softmax(scores)[:, P:] · V_own

where the prefix product is one matrix product for all rows and query heads (the queries
of a key/value head are stacked: `[kv_heads, rows·group·q, d] × [kv_heads, d, P]`). It is
exact attention over the concatenation (one softmax over both parts), so results equal
the copied-prefix attention up to floating-point order.

It plugs into transformers through `AttentionInterface` (a registered attention function,
selected with `model.set_attn_implementation` for the duration of generation and restored
after) and receives the prefix as the `shared_prefix` keyword that transformers' model
forwards pass down to the attention function. Models whose attention does not go through
that interface keep their implementation; `shared_prefix_attention` then yields False and
the caller copies the prefix instead.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "innerpo_shared_prefix"


def shared_prefix_attention_forward(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, shared_prefix: Cache | None = None, **kwargs
):
    """query [rows, heads, q, d]; key, value [rows, kv_heads, L, d] (the rows' own tokens);
    attention_mask None or bool [rows, 1, q, L] (True = attend) over the own tokens only;
    `shared_prefix` a batch-1 cache whose layer `module.layer_idx` holds the prefix's keys
    and values [1, kv_heads, P, d]. Returns [rows, q, heads, d] like transformers' SDPA."""
    if shared_prefix is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    layer = shared_prefix.layers[module.layer_idx]
    pk, pv = layer.keys[0], layer.values[0]  # [kv_heads, P, d]
    rows, heads, q, d = query.shape
    kv_heads, n_prefix = pk.shape[0], pk.shape[1]
    scale = scaling if scaling is not None else d**-0.5
    qg = query.reshape(rows, kv_heads, -1, d)  # [rows, kv_heads, group·q, d]: head h = kv_head·group + g
    gq = qg.shape[2]
    qp = qg.transpose(0, 1).reshape(kv_heads, rows * gq, d)
    s_prefix = torch.matmul(qp, pk.transpose(-1, -2)).view(kv_heads, rows, gq, n_prefix).transpose(0, 1)
    s_own = torch.matmul(qg, key.transpose(-1, -2))  # [rows, kv_heads, group·q, L]
    if attention_mask is not None:
        own_mask = attention_mask.repeat(1, 1, gq // q, 1)  # [rows, 1, group·q, L]: row g·q + t is query t
        s_own = s_own.masked_fill(~own_mask, float("-inf"))
    probs = torch.softmax(torch.cat([s_prefix, s_own], dim=-1) * scale, dim=-1)
    p_prefix = probs[..., :n_prefix].transpose(0, 1).reshape(kv_heads, rows * gq, n_prefix)
    out = torch.matmul(p_prefix, pv).view(kv_heads, rows, gq, d).transpose(0, 1)
    out = out + torch.matmul(probs[..., n_prefix:], value)  # [rows, kv_heads, group·q, d]
    return out.reshape(rows, heads, q, d).transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, shared_prefix_attention_forward)


@contextmanager
def shared_prefix_attention(model, wanted: bool = True):
    """Switch `model` to the shared-prefix attention while inside; yields whether it did
    (False when not `wanted` or when the model does not use transformers' AttentionInterface;
    nothing changed then)."""
    before = getattr(model.config, "_attn_implementation", None)
    if not wanted or before is None or not hasattr(model, "set_attn_implementation"):
        yield False
        return
    model.set_attn_implementation(NAME)
    try:
        yield model.config._attn_implementation == NAME
    finally:
        model.set_attn_implementation(before)


def decoder_mask(pad: torch.Tensor, q: int) -> torch.Tensor:
    """Bool [rows, 1, q, L] (True = attend) for the last `q` of L cached positions: `pad`
    [rows, L] is 1 at real tokens, 0 at padding; query t sees the real tokens up to its own
    position. A padding query also sees itself, so no softmax runs over nothing (its output
    is never used, and no real query sees it). transformers passes a 4D mask through as is."""
    n = pad.shape[1]
    causal = torch.ones((q, n), dtype=torch.bool, device=pad.device).tril(n - q)
    itself = torch.zeros((q, n), dtype=torch.bool, device=pad.device)
    itself[torch.arange(q), torch.arange(n - q, n)] = True
    return (pad.bool()[:, None, None, :] & causal) | itself
