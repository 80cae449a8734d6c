"""Preference accuracy and coherence of the base model and the adapter, in one pass.

For every pair, the policy (adapter on) and the base (adapter off) score the chosen
and rejected completions. Definitions:
- accuracy (the headline number): share of pairs whose chosen completion has the higher
  *mean per-token* log-prob; ties count as wrong;
- accuracy_sum: the same with *summed* log-probs (favours shorter completions);
- nll: mean per-token negative log-likelihood of the chosen completions, over all their
  tokens (token-weighted). Coherence is adapter nll minus base nll; a positive value
  means the adapter finds good answers less likely than the base did.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from innerpo.data.tokenize import TokenizedPair
from innerpo.models.forward import logp_rows
from innerpo.models.merge import merged_adapter
from innerpo.models.ref_cache import compute_reference, reference_table, rows_pass


@dataclass
class Scores:
    accuracy: float
    accuracy_sum: float
    nll: float
    n_pairs: int

    @classmethod
    def from_rows(cls, rows: dict[str, torch.Tensor]) -> "Scores":
        """From per-pair [N] tensors chosen_sum, chosen_ntok, rejected_sum, rejected_ntok."""
        c_sum, c_n, r_sum, r_n = (rows[k] for k in ("chosen_sum", "chosen_ntok", "rejected_sum", "rejected_ntok"))
        return cls(
            accuracy=(c_sum / c_n > r_sum / r_n).float().mean().item(),
            accuracy_sum=(c_sum > r_sum).float().mean().item(),
            nll=(-c_sum.sum() / c_n.sum()).item(),
            n_pairs=len(c_sum),
        )


def pair_rows(
    model,
    items: list[TokenizedPair],
    pad_id: int,
    batch_size: int,
    desc: str = "eval",
    with_base: bool = True,
    base_settings: dict | None = None,
    max_tokens: int | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """Per-pair rows {"adapter": rows, "base": rows}; rows are [N] tensors chosen_sum,
    chosen_ntok, rejected_sum, rejected_ntok (summed completion log-probs and token counts).

    base only when `with_base` and the model has an adapter. The base model's rows are
    reference values: with `base_settings` (what the cache key needs besides weights and
    tokens) they come from the on-disk reference cache, so evaluating many runs of one
    base model scores the base once. `max_tokens`: batches sized by tokens
    (innerpo.models.ref_cache.rows_pass). Batches run packed, without padding
    (innerpo.models.packed), and at fp32 on the CPU the adapter is scored merged into the
    weights (innerpo.models.merge): both agree with the plain padded pass up to rounding.
    """
    with merged_adapter(model):  # one GEMM per layer instead of three, where exact (innerpo.models.merge)
        out = {
            "adapter": rows_pass(
                model, items, pad_id, batch_size, logp_rows, adapter=True, desc=desc, max_tokens=max_tokens
            )
        }
    if with_base and hasattr(model, "disable_adapter"):
        if base_settings is not None:
            out["base"], _ = reference_table(
                model, items, pad_id, batch_size, base_settings, logp_rows, max_tokens=max_tokens
            )
        else:
            out["base"] = compute_reference(model, items, pad_id, batch_size, logp_rows, max_tokens)
    return out


def score_pairs(
    model,
    items: list[TokenizedPair],
    pad_id: int,
    batch_size: int,
    desc: str = "eval",
    with_base: bool = True,
    base_settings: dict | None = None,
    max_tokens: int | None = None,
) -> dict[str, Scores]:
    """{"adapter": Scores, "base": Scores}: `pair_rows` aggregated."""
    rows = pair_rows(model, items, pad_id, batch_size, desc, with_base, base_settings, max_tokens)
    return {variant: Scores.from_rows(r) for variant, r in rows.items()}
