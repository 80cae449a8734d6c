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

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from innerpo.data.batching import collate
from innerpo.data.tokenize import TokenizedPair
from innerpo.models.forward import forward_pairs


@dataclass
class Scores:
    accuracy: float
    accuracy_sum: float
    nll: float
    n_pairs: int


def _scores(c_sum, c_n, r_sum, r_n) -> Scores:
    c_sum, c_n, r_sum, r_n = (torch.cat(t) for t in (c_sum, c_n, r_sum, r_n))
    return Scores(
        accuracy=(c_sum / c_n > r_sum / r_n).float().mean().item(),
        accuracy_sum=(c_sum > r_sum).float().mean().item(),
        nll=(-c_sum.sum() / c_n.sum()).item(),
        n_pairs=len(c_sum),
    )


@torch.no_grad()
def score_pairs(model, items: list[TokenizedPair], pad_id: int, batch_size: int, desc: str = "eval", with_base: bool = True) -> dict[str, Scores]:
    """{"adapter": Scores, "base": Scores} (base only when `with_base` and model has an adapter)."""
    has_adapter = hasattr(model, "disable_adapter")
    variants = ["adapter"] + (["base"] if with_base and has_adapter else [])
    acc = {v: ([], [], [], []) for v in variants}
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(items), batch_size), desc=desc, leave=False, unit="batch"):
            batch = collate(items[start : start + batch_size], pad_id).to(next(model.parameters()).device)
            for v in variants:
                with model.disable_adapter() if v == "base" else nullcontext():
                    out = forward_pairs(model, batch)
                for store, t in zip(acc[v], (out.chosen.sum, out.chosen.ntok, out.rejected.sum, out.rejected.ntok)):
                    store.append(t.float().cpu())
    finally:
        model.train(was_training)
    return {v: _scores(*acc[v]) for v in variants}
