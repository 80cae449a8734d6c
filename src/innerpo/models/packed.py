"""Padding-free scoring: a batch of pairs run as one packed row, with no padding token anywhere.

A padded batch pays for its longest prompt and its longest completion in every row: on
GENIES alpaca_hard (prompts ~96 tokens, completions 10 to 271) the shared-prompt pass
(innerpo.models.forward) still ran ~30% more tokens through the body than the pairs hold.
Here a batch's pairs are laid end to end in one row,

    [P_1 C_1 R_1 P_2 C_2 R_2 ...]   positions 0..P-1 for a prompt, P.. for each completion,

so every linear layer and the head see exactly the real tokens. Attention is the one
place tokens meet; a registered transformers attention function (`AttentionInterface`,
switched on only for the call) runs it per pair: the prompt causally over itself, each
completion over its prompt's keys and causally over its own. That is the same attention
as the padded pass's, so log-probs agree with it up to floating-point order (the tests
hold them within 1e-4 on summed log-probs). Transformers' own packed format (position
ids that restart) serves flash-attention kernels only, and its SDPA mask for it is a
dense [N, N] matrix, quadratic in the whole batch: hence this function, written by hand.

Only for no-grad scoring of PairBatches whose rows are prompt + completion (collate's
layout), on full-attention models that use SDPA attention through `AttentionInterface`;
`innerpo.models.forward.logp_rows` runs the padded pass otherwise.

Devices. The per-pair loop is device-correct: on CUDA it runs the same SDPA calls (masks
are moved to the query's device and dtype), checked against the padded pass in
tests/gpu. The float32 path is CPU-only by construction: it follows FP32_SDPA, which
innerpo.models.precision installs only on CPU (bf16 flash-attention backward is slow
there, not on GPUs). On a GPU the loop is correct but launches 3 small kernels per pair;
a variable-length kernel (FlexAttention with a block mask of "same pair, prompt or own
completion, causal", or flash-attention's varlen) is the fast path there and is still to
be written and measured; `--model.attn_implementation` other than sdpa/auto turns packing
off (innerpo.models.backends).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import AttentionInterface

from innerpo.data.batching import PairBatch
from innerpo.models.precision import FP32_SDPA

NAME = "innerpo_packed"
# Implementations whose attention this function reproduces: SDPA's, in the model's dtype or
# in float32. (Not "eager": models choose it for what SDPA cannot do, e.g. logit soft-capping.)
REPLACES = ("sdpa", FP32_SDPA)


def supports(config) -> bool:
    """True when a model with this config can be scored packed: SDPA attention through
    transformers' AttentionInterface and no attention-logit soft-capping (SDPA has none).
    (Full attention and the batch's layout are the caller's checks: forward._shared_prompt_plan.)"""
    return getattr(config, "_attn_implementation", None) in REPLACES and not getattr(
        config, "attn_logit_softcapping", None
    )


@dataclass
class Packing:
    """Where each pair sits in the packed row: a prompt at [start, start + P), its chosen
    completion right after, its rejected completion after that."""

    start: list[int]
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    float32: bool  # attention in float32 (the model's CPU bf16 setting, innerpo.models.precision)

    def __post_init__(self):
        # per pair and completion: the mask [C, P + C] of "prompt, then causal over itself"
        self.masks = [
            tuple(_completion_mask(p, c) for c in (ch, rj))
            for p, ch, rj in zip(self.prompt, self.chosen, self.rejected)
        ]


def _completion_mask(prompt: int, completion: int) -> Tensor:
    """Additive float mask [1, 1, C, P + C]: 0 where a completion token attends (all of the
    prompt, then its own tokens causally), -inf elsewhere. (A float mask on 4-D inputs takes
    torch's CPU flash kernel: 0.66 ms against 1.08 ms for a bool mask at 9 heads, P = 96,
    C = 100, measured here.)"""
    keep = torch.ones(completion, prompt + completion, dtype=torch.bool).tril(prompt)
    return torch.zeros(keep.shape).masked_fill_(~keep, float("-inf"))[None, None]


def packed_attention_forward(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, packing: Packing | None = None, **kwargs
):
    """query [1, H, N, d]; key, value [1, H_kv, N, d] over the packed row. Returns [1, N, H, d].
    `dropout`: the caller's attention dropout (0 outside training), applied as SDPA would."""
    if packing is None:
        raise RuntimeError(
            "innerpo_packed attention needs the packing layout (innerpo.models.forward.logp_rows passes it)"
        )
    if packing.float32:
        query, key, value = query.float(), key.float(), value.float()
    group = query.shape[1] // key.shape[1]
    if group > 1:  # grouped-query attention: each key/value head serves `group` query heads
        key, value = key.repeat_interleave(group, dim=1), value.repeat_interleave(group, dim=1)
    out = torch.empty_like(query)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    with torch.autocast(query.device.type, enabled=False) if packing.float32 else nullcontext():
        for start, p, c, r, masks in zip(
            packing.start, packing.prompt, packing.chosen, packing.rejected, packing.masks
        ):
            prompt = slice(start, start + p)
            pk, pv = key[:, :, prompt], value[:, :, prompt]
            out[:, :, prompt] = sdpa(query[:, :, prompt], pk, pv, is_causal=True, dropout_p=dropout, scale=scaling)
            for first, n, mask in ((start + p, c, masks[0]), (start + p + c, r, masks[1])):
                own = slice(first, first + n)
                keys, values = torch.cat([pk, key[:, :, own]], dim=2), torch.cat([pv, value[:, :, own]], dim=2)
                out[:, :, own] = sdpa(
                    query[:, :, own],
                    keys,
                    values,
                    attn_mask=mask.to(query.device, query.dtype),
                    dropout_p=dropout,
                    scale=scaling,
                )
    return out.transpose(1, 2), None


AttentionInterface.register(NAME, packed_attention_forward)


@dataclass
class _Row:
    ids: Tensor  # [N]
    positions: Tensor  # [N]
    predictors: Tensor  # [M]: packed position whose state predicts each completion token
    targets: Tensor  # [M]
    owner: Tensor  # [M]: row of the [2B] chosen-then-rejected layout the token belongs to


def pack(batch: PairBatch, prompt_len: Tensor, completion_len: Tensor, float32: bool) -> tuple[_Row, Packing]:
    """The packed row of a right-padded PairBatch whose halves share prompts.

    prompt_len [B]; completion_len [2B] (chosen rows, then rejected)."""
    b = batch.num_pairs
    ids = batch.input_ids
    prompts, chosen, rejected = prompt_len.tolist(), completion_len[:b].tolist(), completion_len[b:].tolist()
    pieces, positions, predictors, targets, owner, starts = [], [], [], [], [], []
    start = 0
    for i, (p, c, r) in enumerate(zip(prompts, chosen, rejected)):
        starts.append(start)
        pieces += [ids[i, : p + c], ids[b + i, p : p + r]]
        positions += [torch.arange(p + c), torch.arange(p, p + r)]
        last_prompt = start + p - 1
        predictors += [
            torch.arange(last_prompt, last_prompt + c),  # chosen token k from position P-1+k
            torch.cat([torch.tensor([last_prompt]), torch.arange(start + p + c, start + p + c + r - 1)]),
        ]
        targets += [ids[i, p : p + c], ids[b + i, p : p + r]]
        owner += [torch.full((c,), i), torch.full((r,), b + i)]
        start += p + c + r
    dev = ids.device
    row = _Row(
        torch.cat(pieces),
        torch.cat(positions).to(dev),
        torch.cat(predictors).to(dev),
        torch.cat(targets),
        torch.cat(owner).to(dev),
    )
    return row, Packing(starts, prompts, chosen, rejected, float32)


@contextmanager
def packed_attention(model):
    """`model` (a transformers model) runs the packed attention while inside."""
    before = model.config._attn_implementation
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(before)
