"""Per-pair evaluation results: one row per scored pair, written as Parquet.

Reports aggregate these (over seeds, methods, shifts) without re-running anything, and
paired statistics (method A vs B on the same pairs) need them. Columns:

- `pair_id`: first 16 hex digits of SHA-256 over the pair's prompt, chosen and rejected
  (a canonical JSON of the three), so the same pair has the same id in every run;
- `suite`, `shift`, `dataset`, `split`, `index` (the pair's position in the shift's source
  after loading, before any limit or length drop);
- `prompt_tokens`, `chosen_tokens`, `rejected_tokens` (completion token counts are the
  denominators of the per-token means);
- for each variant `v` in (`adapter`, `base`): `v_chosen_logp`, `v_rejected_logp` (summed
  completion log-probs, nats), `v_chosen_logp_mean`, `v_rejected_logp_mean` (per token),
  `v_correct` (mean per-token log-prob of chosen > rejected; ties wrong; the headline
  accuracy), `v_correct_sum` (the same on summed log-probs), `v_chosen_nll` (per-token NLL
  of the chosen completion), `v_p_chosen` (the probability the model gives the chosen
  completion: the two-way softmax over the two per-token means, innerpo.eval.calibration).
  Base columns are absent when the model has no adapter.

The per-shift `accuracy` in summary.json is the mean of `adapter_correct` over the shift's
rows; the shift's `nll` is token-weighted (sum of −chosen_logp over sum of chosen_tokens).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import torch

from innerpo.data.pairs import Pair
from innerpo.data.tokenize import TokenizedPair
from innerpo.eval.calibration import chosen_probability
from innerpo.io import atomic_path

FILENAME = "pairs.parquet"


def pair_id(pair: Pair) -> str:
    """Stable id of a pair's content (independent of file, order and tokenizer)."""
    text = json.dumps([pair.prompt, pair.chosen, pair.rejected], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shift_frame(
    suite: str,
    shift: str,
    dataset: str,
    split: str,
    kept: list[tuple[int, TokenizedPair]],
    pairs: list[Pair],
    rows: dict[str, dict[str, torch.Tensor]],
) -> pd.DataFrame:
    """One shift's per-pair rows. kept: (index into `pairs`, tokenized pair) for each scored
    pair, in the order of `rows`; rows: {"adapter"|"base": [N] tensors from `pair_rows`}."""
    frame = pd.DataFrame(
        {
            "pair_id": [pair_id(pairs[i]) for i, _ in kept],
            "suite": suite,
            "shift": shift,
            "dataset": dataset,
            "split": split,
            "index": [i for i, _ in kept],
            "prompt_tokens": [len(t.prompt) for _, t in kept],
        }
    )
    for variant, r in rows.items():
        c_sum, c_n, r_sum, r_n = (r[k].double() for k in ("chosen_sum", "chosen_ntok", "rejected_sum", "rejected_ntok"))
        frame["chosen_tokens"] = c_n.long().numpy()
        frame["rejected_tokens"] = r_n.long().numpy()
        frame[f"{variant}_chosen_logp"] = c_sum.numpy()
        frame[f"{variant}_rejected_logp"] = r_sum.numpy()
        frame[f"{variant}_chosen_logp_mean"] = (c_sum / c_n).numpy()
        frame[f"{variant}_rejected_logp_mean"] = (r_sum / r_n).numpy()
        frame[f"{variant}_correct"] = (c_sum / c_n > r_sum / r_n).numpy()
        frame[f"{variant}_correct_sum"] = (c_sum > r_sum).numpy()
        frame[f"{variant}_chosen_nll"] = (-c_sum / c_n).numpy()
        frame[f"{variant}_p_chosen"] = chosen_probability((c_sum / c_n).numpy(), (r_sum / r_n).numpy())
    return frame


def write_pair_results(out_dir: Path, frame: pd.DataFrame) -> Path:
    path = Path(out_dir) / FILENAME
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return path


def read_pair_results(out_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(Path(out_dir) / FILENAME)
