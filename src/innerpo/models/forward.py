"""Completion log-probabilities from one forward pass, without full-vocabulary log-softmax.

The transformer body runs once over the [2B, T] batch; the output head is applied only
at positions whose *next* token is a completion token (labels shifted by one), and the
log-prob of each target is its logit minus the log-sum-exp of that position's logits.
Prompt and padding positions never reach the head, so no [2B, T, V] tensor exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from innerpo.data.batching import PairBatch
from innerpo.losses.base import SeqLogps


@dataclass
class ForwardOutput:
    chosen: SeqLogps  # [B]
    rejected: SeqLogps  # [B]
    hidden_states: tuple[Tensor, ...] | None = None  # per layer [2B, T, D], when asked for


def _body_and_head(model):
    """The transformer body and output head of a causal LM, peft-wrapped or not."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.base_model, base.get_output_embeddings(), base.config


def token_logps(hidden: Tensor, head, targets: Tensor, softcap: float | None = None) -> Tensor:
    """Log-prob of each target token. hidden [N, D], targets [N] → [N] float32."""
    logits = head(hidden).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def forward_pairs(model, batch: PairBatch, output_hidden_states: bool = False) -> ForwardOutput:
    body, head, config = _body_and_head(model)
    out = body(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        output_hidden_states=output_hidden_states,
        use_cache=False,
    )
    hidden = out.last_hidden_state  # [2B, T, D]
    predicts = batch.completion_mask[:, 1:]  # position t predicts token t+1
    targets = batch.input_ids[:, 1:][predicts]  # [M]
    logps = token_logps(hidden[:, :-1][predicts], head, targets, getattr(config, "final_logit_softcapping", None))
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(predicts)[predicts]
    sums = torch.zeros(hidden.shape[0], dtype=logps.dtype, device=logps.device).index_add(0, rows, logps)
    ntok = predicts.sum(dim=1).to(logps.dtype)
    b = batch.num_pairs
    return ForwardOutput(
        chosen=SeqLogps(sums[:b], ntok[:b]),
        rejected=SeqLogps(sums[b:], ntok[b:]),
        hidden_states=out.hidden_states if output_hidden_states else None,
    )


def logp_rows(model, batch: PairBatch) -> dict[str, Tensor]:
    """Per-pair completion log-probs as named [B] tensors (the reference table's layout)."""
    out = forward_pairs(model, batch)
    return {"chosen_sum": out.chosen.sum, "chosen_ntok": out.chosen.ntok, "rejected_sum": out.rejected.sum, "rejected_ntok": out.rejected.ntok}
