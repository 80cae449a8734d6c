"""Completion log-probabilities from one forward pass, without full-vocabulary log-softmax.

The transformer body runs once over the [2B, T] batch; the output head is applied only
at positions whose *next* token is a completion token (labels shifted by one), and the
log-prob of each target is its logit minus the log-sum-exp of that position's logits.
Prompt and padding positions never reach the head, so no [2B, T, V] tensor exists.

Shared prompt. The chosen and rejected rows of a pair start with the same prompt, and a
causal model's states over the prompt do not depend on what follows it. So, when it is
cheaper in tokens, the body runs over the B prompts once (a [B, P] pass that keeps its
keys and values) and then over the 2B completions ([2B, C], each row attending to its
prompt's cached keys and values, positions continuing after its prompt). The first
completion token is predicted from the prompt pass's last prompt state. This is the
same function of the weights as the [2B, T] pass (gradients flow through the cached
keys and values into the prompt pass), with about half the body work when prompts are
long and completions short. It is used only when nothing can tell the difference: a
PairBatch whose halves share prompts, right-padded, no hidden states asked for, no
hooks on the model (hidden-state capture and gradient projection observe per-pass
activations and keep the single pass), no gradient checkpointing, and a model whose
cache is full attention; otherwise, or when the cache is not of the plain per-layer
kind, the single pass runs.

Precision. Everything here runs inside the autocast of the precision the model was
prepared for (innerpo.models.precision; nothing at fp32). The head's logits leave a
bf16 GEMM rounded to bf16 (no CPU kernel returns float32 from bf16 inputs); they are
upcast before the log-sum-exp, and log-probs, sums and counts are float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from innerpo.data.batching import PairBatch
from innerpo.losses.base import SeqLogps
from innerpo.models import packed
from innerpo.models.precision import FP32_SDPA, autocast


@dataclass
class ForwardOutput:
    chosen: SeqLogps  # [B]
    rejected: SeqLogps  # [B]
    hidden_states: tuple[Tensor, ...] | None = None  # per layer [2B, T, D], when asked for
    # Completion positions in the layout of the *last* body pass: [2B, T] for the single
    # pass, [2B, C] for the completion pass of the shared-prompt path. Activations that
    # hooks captured during the forward (the last pass overwrites) are pooled with it.
    completion_mask: Tensor | None = None


def body_and_head(model):
    """The transformer body and output head of a causal LM, peft-wrapped or not."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.base_model, base.get_output_embeddings(), base.config


# Without gradients the head runs on this many positions at a time: the [rows, V] logits of
# a whole batch (GENIES alpaca_hard: ~3,000 positions × 49,152 × 4 bytes = 600 MB) are a fresh
# allocation the kernel must page in on every batch, which cost more than the log-sum-exp
# itself (profile: a third of the head's time); 128 rows (25 MB for SmolLM2) stay in
# memory the allocator reuses.
HEAD_CHUNK = 128


#: Per-token statistics of the head's distribution a method may ask for besides the
#: log-probs (``stats=``), each summed over a row's completion tokens into ``SeqLogps``;
#: computed without gradient:
#: - ``wpo``: log π(y_t) − log Σ_v π(v)², WPO's per-token log-weight (innerpo.losses.weighting);
#: - ``entropy``: H_t / log V, the token's entropy as a share of its maximum (Mallows).
STATS = ("wpo", "entropy")


def token_logps(hidden: Tensor, head, targets: Tensor, softcap: float | None = None) -> Tensor:
    """Log-prob of each target token. hidden [N, D], targets [N] → [N] float32."""
    return token_stats(hidden, head, targets, softcap)["logp"]


def token_stats(
    hidden: Tensor, head, targets: Tensor, softcap: float | None = None, stats: tuple[str, ...] = ()
) -> dict[str, Tensor]:
    """``logp`` [N] float32 and each of `stats` (see :data:`STATS`) [N] for every target token."""
    unknown = set(stats) - set(STATS)
    if unknown:
        raise ValueError(f"unknown token statistics {sorted(unknown)}; known: {', '.join(STATS)}")
    if torch.is_grad_enabled() or len(hidden) <= HEAD_CHUNK:
        return _token_stats(hidden, head, targets, softcap, stats)
    parts = [
        _token_stats(hidden[s : s + HEAD_CHUNK], head, targets[s : s + HEAD_CHUNK], softcap, stats)
        for s in range(0, len(hidden), HEAD_CHUNK)
    ]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _token_stats(
    hidden: Tensor, head, targets: Tensor, softcap: float | None, stats: tuple[str, ...]
) -> dict[str, Tensor]:
    logits = head(hidden).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    lse = torch.logsumexp(logits, dim=-1)
    out = {"logp": logits.gather(-1, targets[:, None]).squeeze(-1) - lse}
    if stats:
        with torch.no_grad():
            logp = out["logp"].detach()
            if "wpo" in stats:  # log Σ_v π(v)² = logsumexp(2·logits) − 2·lse
                out["wpo"] = logp - (torch.logsumexp(2 * logits, dim=-1) - 2 * lse)
            if "entropy" in stats:  # H = lse − Σ_v π(v)·logit_v
                probs = torch.softmax(logits, dim=-1)
                out["entropy"] = (lse - (probs * logits).sum(-1)) / math.log(logits.shape[-1])
    return out


def _row_sums(values: dict[str, Tensor], owner: Tensor, n: int) -> dict[str, Tensor]:
    """Per-row sums [n] of per-token values [M] owned by rows `owner` [M]."""
    return {k: torch.zeros(n, dtype=v.dtype, device=v.device).index_add(0, owner, v) for k, v in values.items()}


def _seq(sums: dict[str, Tensor], ntok: Tensor, rows: slice) -> SeqLogps:
    return SeqLogps(
        sums["logp"][rows],
        ntok[rows],
        wpo=sums["wpo"][rows] if "wpo" in sums else None,
        entropy=sums["entropy"][rows] if "entropy" in sums else None,
    )


def forward_pairs(
    model,
    batch: PairBatch,
    output_hidden_states: bool = False,
    observing_hooks: bool = False,
    stats: tuple[str, ...] = (),
) -> ForwardOutput:
    """Completion log-probs of chosen and rejected rows.

    observing_hooks: the caller's forward hooks only read activations at completion
    positions (hidden-state capture), so the shared-prompt path stays allowed; the
    captured states then follow `ForwardOutput.completion_mask`.
    stats: per-token statistics (:data:`STATS`) to sum per row besides the log-probs.
    """
    with autocast(model):  # the model's precision (innerpo.models.precision); a no-op at fp32
        return _forward_pairs(model, batch, output_hidden_states, observing_hooks, tuple(stats))


def _forward_pairs(
    model, batch: PairBatch, output_hidden_states: bool, observing_hooks: bool, stats: tuple[str, ...] = ()
) -> ForwardOutput:
    body, head, config = body_and_head(model)
    softcap = getattr(config, "final_logit_softcapping", None)
    plan = None if output_hidden_states else _shared_prompt_plan(model, config, batch, observing_hooks)
    hidden_states = None
    shared = _shared_prompt_logps(body, head, softcap, batch, plan, stats) if plan is not None else None
    if shared is not None:
        sums, ntok, mask = shared
    else:
        out = body(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            output_hidden_states=output_hidden_states,
            use_cache=False,
        )
        hidden = out.last_hidden_state  # [2B, T, D]
        predicts = batch.completion_mask[:, 1:]  # position t predicts token t+1
        targets = batch.input_ids[:, 1:][predicts]  # [M]
        values = token_stats(hidden[:, :-1][predicts], head, targets, softcap, stats)
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(predicts)[predicts]
        sums = _row_sums(values, rows, hidden.shape[0])
        ntok = predicts.sum(dim=1).to(values["logp"].dtype)
        hidden_states = out.hidden_states if output_hidden_states else None
        mask = batch.completion_mask
    b = batch.num_pairs
    return ForwardOutput(
        chosen=_seq(sums, ntok, slice(None, b)),
        rejected=_seq(sums, ntok, slice(b, None)),
        hidden_states=hidden_states,
        completion_mask=mask,
    )


# Take the shared-prompt path when its padded token count is at most this share of the
# single pass's (the second pass has a fixed cost of its own).
SHARED_PROMPT_MAX_SHARE = 0.9


@dataclass
class _Plan:
    prompt_len: Tensor  # [B] long, the same for a pair's two rows
    completion_len: Tensor  # [2B] long
    prompt_width: int  # max prompt length
    completion_width: int  # max completion length


def _shared_prompt_plan(model, config, batch, observing_hooks: bool = False, cheaper_only: bool = True) -> _Plan | None:
    """The shared-prompt layout of `batch` when that path is valid (and, with `cheaper_only`,
    cheaper than the single pass), else None."""
    if not isinstance(batch, PairBatch):
        return None
    ids, attn, comp = batch.input_ids, batch.attention_mask, batch.completion_mask
    n, width = ids.shape
    b = batch.num_pairs
    if n == 0 or n != 2 * b or not _full_attention(config) or _single_pass_only(model, observing_hooks):
        return None
    length = attn.sum(dim=1)
    completion_len = comp.sum(dim=1)
    prompt_len = length - completion_len
    if (
        bool((prompt_len < 1).any())
        or bool((completion_len < 1).any())
        or not torch.equal(prompt_len[:b], prompt_len[b:])
    ):
        return None
    pos = torch.arange(width, device=ids.device)
    # right-padded rows, each a prompt followed directly by its completion (collate's layout)
    if not torch.equal(attn.bool(), pos < length[:, None]):
        return None
    if not torch.equal(comp.bool(), (pos >= prompt_len[:, None]) & (pos < length[:, None])):
        return None
    prompt_width, completion_width = int(prompt_len.max()), int(completion_len.max())
    in_prompt = pos[:prompt_width] < prompt_len[:b, None]
    if not torch.equal(ids[:b, :prompt_width] * in_prompt, ids[b:, :prompt_width] * in_prompt):
        return None
    if cheaper_only and b * prompt_width + n * completion_width > SHARED_PROMPT_MAX_SHARE * n * width:
        return None
    return _Plan(prompt_len[:b], completion_len, prompt_width, completion_width)


def _full_attention(config) -> bool:
    """True when every layer attends to the whole past (no sliding windows, no other mixers)."""
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None and any(t != "full_attention" for t in layer_types):
        return False
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False
    return not getattr(config, "is_encoder_decoder", False)


def _single_pass_only(model, observing_hooks: bool = False) -> bool:
    """True when hooks may watch or edit per-pass activations or gradients, or when gradient
    checkpointing is on for this pass (it drops the cache in training, with gradients):
    then the single pass it is. Without gradients transformers does not checkpoint, so
    the reference pass and scoring keep the shared-prompt and packed paths.
    With observing_hooks the caller vouches that its hooks only read completion states."""
    from torch.nn.modules import module as nn_module

    checkpointed = torch.is_grad_enabled() and any(
        getattr(m, "gradient_checkpointing", False) is True and m.training for m in model.modules()
    )
    if observing_hooks or checkpointed:
        return checkpointed
    if nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks or nn_module._global_backward_hooks:
        return True
    for m in model.modules():
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks:
            return True
    return False


def _shared_prompt_logps(
    body, head, softcap, batch: PairBatch, plan: _Plan, stats: tuple[str, ...] = ()
) -> tuple[dict[str, Tensor], Tensor, Tensor] | None:
    """Summed completion log-probs (and `stats`) per row {name: [2B]}, completion token
    counts [2B] and the completion pass's mask [2B, C], prompts run once.

    None when the model's cache is not the plain per-layer key/value kind this needs, or
    was not used by every layer (the caller then runs the single pass).
    """
    ids = batch.input_ids
    n, width = ids.shape
    b = n // 2
    dev = ids.device
    rows = torch.arange(n, device=dev)
    prompt_len = plan.prompt_len.repeat(2)  # [2B]
    p_pos = torch.arange(plan.prompt_width, device=dev)
    c_pos = torch.arange(plan.completion_width, device=dev)
    prompt_mask = (p_pos < plan.prompt_len[:, None]).long()  # [B, P]

    # 1. the prompts, once; slots past a prompt's end are masked (they hold chosen tokens)
    out = body(input_ids=ids[:b, : plan.prompt_width], attention_mask=prompt_mask, use_cache=True)
    cache = getattr(out, "cache", None)
    layers = getattr(cache, "layers", None)
    if not layers or any(
        type(layer).__name__ != "DynamicLayer" or layer.keys is None or layer.keys.shape[-2] != plan.prompt_width
        for layer in layers
    ):
        return None
    for layer in layers:  # rows 0..B-1 chosen, B..2B-1 rejected: the same prompts twice
        layer.keys = torch.cat([layer.keys, layer.keys])
        layer.values = torch.cat([layer.values, layer.values])

    # 2. the completions, right-padded [2B, C], positions continuing after each prompt
    positions = prompt_len[:, None] + c_pos  # [2B, C]
    comp_ids = ids.gather(1, positions.clamp(max=width - 1))
    comp_valid = c_pos < plan.completion_len[:, None]  # [2B, C]
    attention = torch.cat(
        [prompt_mask.repeat(2, 1), comp_valid.long()], dim=1
    )  # keys: prompt slots, then completion slots
    hidden_c = body(
        input_ids=comp_ids, attention_mask=attention, position_ids=positions, cache=cache, use_cache=True
    ).last_hidden_state
    if any(layer.keys.shape[-2] != plan.prompt_width + plan.completion_width for layer in layers):
        return None  # some layer did not attend through the cache; the caller recomputes in one pass

    # token k of a completion is predicted by the state before it: the prompt's last for k = 0
    first = out.last_hidden_state[rows % b, prompt_len - 1]  # [2B, D]
    rest = comp_valid[:, 1:]  # [2B, C-1]: token k+1 exists
    hidden = torch.cat([first, hidden_c[:, :-1][rest]])
    targets = torch.cat([comp_ids[:, 0], comp_ids[:, 1:][rest]])
    values = token_stats(hidden, head, targets, softcap, stats)
    owner = torch.cat([rows, rows[:, None].expand_as(rest)[rest]])
    return _row_sums(values, owner, n), plan.completion_len.to(values["logp"].dtype), comp_valid


def logp_rows(model, batch: PairBatch, stats: tuple[str, ...] = ()) -> dict[str, Tensor]:
    """Per-pair completion log-probs as named [B] tensors (the reference table's layout),
    plus `<side>_<stat>` for each of `stats` (:data:`STATS`).

    Without gradients (scoring, the reference pass) the batch runs packed, padding-free,
    where it can (innerpo.models.packed); otherwise through `forward_pairs`."""
    if not torch.is_grad_enabled():
        with autocast(model):
            packed_out = _packed_logps(model, batch, tuple(stats))
        if packed_out is not None:
            return rows_of(*packed_out)
    out = forward_pairs(model, batch, stats=stats)
    return rows_of(out.chosen, out.rejected)


def rows_of(chosen: SeqLogps, rejected: SeqLogps) -> dict[str, Tensor]:
    """The reference table's named [B] tensors from chosen and rejected log-probs (and
    their `wpo` / `entropy` sums when present)."""
    rows = {
        "chosen_sum": chosen.sum,
        "chosen_ntok": chosen.ntok,
        "rejected_sum": rejected.sum,
        "rejected_ntok": rejected.ntok,
    }
    for side, seq in (("chosen", chosen), ("rejected", rejected)):
        for stat in STATS:
            if getattr(seq, stat) is not None:
                rows[f"{side}_{stat}"] = getattr(seq, stat)
    return rows


def seqs_of(rows: dict[str, Tensor]) -> tuple[SeqLogps, SeqLogps]:
    """Chosen and rejected ``SeqLogps`` from the reference table's named rows (inverse of :func:`rows_of`)."""
    return tuple(
        SeqLogps(rows[f"{side}_sum"], rows[f"{side}_ntok"], **{s: rows.get(f"{side}_{s}") for s in STATS})
        for side in ("chosen", "rejected")
    )


def _packed_logps(model, batch: PairBatch, stats: tuple[str, ...] = ()) -> tuple[SeqLogps, SeqLogps] | None:
    """Chosen and rejected log-probs from one packed, padding-free row; None where packing does not apply."""
    body, head, config = body_and_head(model)
    if not packed.supports(config):
        return None
    plan = _shared_prompt_plan(model, config, batch, cheaper_only=False)
    if plan is None:
        return None
    row, packing = packed.pack(
        batch, plan.prompt_len, plan.completion_len, float32=config._attn_implementation == FP32_SDPA
    )
    with packed.packed_attention(body):  # the body shares its config, so the switch is the model's
        hidden = body(
            input_ids=row.ids[None], position_ids=row.positions[None], use_cache=False, packing=packing
        ).last_hidden_state[0]
    values = token_stats(
        hidden[row.predictors], head, row.targets, getattr(config, "final_logit_softcapping", None), stats
    )
    b = batch.num_pairs
    sums = _row_sums(values, row.owner, 2 * b)
    ntok = plan.completion_len.to(values["logp"].dtype)
    return _seq(sums, ntok, slice(None, b)), _seq(sums, ntok, slice(b, None))
