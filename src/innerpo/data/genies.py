"""GENIES distributions (Clymer et al. 2023, arXiv:2311.07723) as preference pairs.

A GENIES row has an instruction, an Alpaca-style rendered `prompt` and `responses`, a
mapping from response text to score. Pairing rule (deterministic, one pair per row):
- chosen: the highest-scored response;
- rejected: the lowest-scored response; when several share the lowest score, the one
  whose SHA-256 of (prompt + response) is smallest. Hashing avoids following the file's
  response order, which may correlate with correctness, and does not depend on a seed.
Rows where every response has the same score carry no preference and are skipped
(counted in the returned number).

GENIES ships train and test only. For hyperparameter search (innerpo.tune) two more
splits are carved out of train: `validation`, the pairs whose SHA-256 of the prompt
falls in a fixed tenth of the range (about 10%, independent of the file's order and of
any seed), and `fit`, the rest of train. Trials train on `fit` and are scored on
`validation`, so the search never sees a test pair nor scores a pair it trained on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from innerpo.data.pairs import Pair, read_json_list
from innerpo.errors import DataError

HUB_DATASET = "wassname/genies_preferences"


def row_to_pair(row: dict, where: str) -> Pair | None:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object, got {type(row).__name__}")
    prompt, responses = row.get("prompt"), row.get("responses")
    if not isinstance(prompt, str) or not isinstance(responses, dict) or len(responses) < 2:
        raise DataError(f"{where}: a GENIES row needs a string 'prompt' and a 'responses' mapping with 2+ entries")
    for text, score in responses.items():
        if not isinstance(score, (int, float)) or score != score:
            raise DataError(f"{where}: response score must be a number, got {score!r}")
    best = max(responses.values())
    worst = min(responses.values())
    if best == worst:
        return None
    chosen = min((t for t, s in responses.items() if s == best), key=lambda t: _digest(prompt, t))
    rejected = min((t for t, s in responses.items() if s == worst), key=lambda t: _digest(prompt, t))
    return Pair(prompt, chosen, rejected)


CARVED_SPLITS = ("validation", "fit")
VALIDATION_SHARE = 10  # one pair in VALIDATION_SHARE of train goes to validation


def carve(train: list[Pair], split: str) -> list[Pair]:
    """The `validation` or `fit` part of a distribution's train pairs (disjoint, together all of them)."""
    if split not in CARVED_SPLITS:
        raise ValueError(f"carve: split must be one of {CARVED_SPLITS}, got {split!r}")
    in_validation = [int(hashlib.sha256(str(p.prompt).encode()).hexdigest(), 16) % VALIDATION_SHARE == 0 for p in train]
    return [p for p, v in zip(train, in_validation) if v == (split == "validation")]


def _digest(prompt: str, text: str) -> str:
    return hashlib.sha256((prompt + "\x00" + text).encode()).hexdigest()


def load_local(genies_dir: str | Path, name: str, split: str) -> list[Pair]:
    path = Path(genies_dir) / name / f"{split}.json"
    if not path.is_file():
        available = (
            sorted(p.name for p in Path(genies_dir).iterdir() if p.is_dir()) if Path(genies_dir).is_dir() else []
        )
        hint = f"; distributions there: {', '.join(available)}" if available else f"; {genies_dir} is not a directory"
        raise FileNotFoundError(f"GENIES file not found: {path}{hint}")
    pairs = [row_to_pair(row, f"{path}, row {i}") for i, row in enumerate(read_json_list(path))]
    return [p for p in pairs if p is not None]


def load_hub(name: str, split: str) -> list[Pair]:
    """Fallback without a local directory: the hub dataset, one config per distribution."""
    import datasets

    ds = datasets.load_dataset(HUB_DATASET, name, split=split)
    if {"prompt", "chosen", "rejected"} <= set(ds.column_names):
        from innerpo.data.pairs import parse_pair

        return [parse_pair(row, f"{HUB_DATASET}/{name}, row {i}") for i, row in enumerate(ds)]
    pairs = [row_to_pair(row, f"{HUB_DATASET}/{name}, row {i}") for i, row in enumerate(ds)]
    return [p for p in pairs if p is not None]
