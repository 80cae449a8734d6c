"""Reference values computed once, stored as safetensors, reused across runs.

The reference model is the base model with the adapter off; it never changes during
training, so what a method reads from it for a fixed tokenized dataset (completion
log-probs; pooled hidden states for hidden-state methods) is a constant. It is computed
in one no-grad pass and stored under
`<cache>/reference/<key>.safetensors`, where the key fingerprints everything they depend
on: the base weights, the exact token ids of every pair, and the settings passed in
`extra` (dtype, max length, truncation, ...). Another seed or another method of the same
family reuses the file; any change yields a new key. Files are written atomically and
carry a SHA-256 of their tensors; a file that fails to parse or to verify is rebuilt,
never used.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm.auto import tqdm

from innerpo.data.batching import PairBatch, collate, scoring_batches
from innerpo.data.tokenize import TokenizedPair
from innerpo.io import atomic_path
from innerpo.models.precision import autocast, precision_of
from innerpo.paths import cache_dir

_FINGERPRINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def weights_fingerprint(model) -> str:
    """BLAKE2 of the base model's parameters and buffers (adapter weights excluded).

    Memoized per model object; tensors' in-place version counters are part of the memo
    key, so editing a weight in place yields a fresh fingerprint.
    """
    state = {k: v for k, v in model.state_dict().items() if "lora_" not in k}
    version = sum(t._version for t in state.values())
    memo = _FINGERPRINTS.get(model)
    if memo is not None and memo[0] == version:
        return memo[1]
    digest = _hash_state(state)
    _FINGERPRINTS[model] = (version, digest)
    return digest


def _hash_state(state: dict[str, Tensor]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(state.items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def item_digests(items: list[TokenizedPair]) -> list[str]:
    return [
        hashlib.blake2b(json.dumps((it.prompt, it.chosen, it.rejected)).encode(), digest_size=16).hexdigest()
        for it in items
    ]


def cache_key(weights: str, digests: list[str], extra: dict) -> str:
    """Key of a reference table: weights, the *set* of pairs (order-free) and settings."""
    data = hashlib.blake2b("".join(sorted(digests)).encode(), digest_size=16).hexdigest()
    payload = json.dumps({"weights": weights, "data": data, "extra": extra}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _digest(tensors: dict[str, Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def load_verified(path: Path, key: str, n: int) -> dict[str, Tensor] | None:
    """The cached tensors if the file is whole, matches the key and has n rows; else None."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return None
    if meta.get("key") != key or meta.get("sha256") != _digest(tensors):
        return None
    if not tensors or any(t.shape[0] != n for t in tensors.values()):
        return None
    return tensors


RowsFn = Callable[[object, PairBatch], dict[str, Tensor]]


@torch.no_grad()
def rows_pass(
    model,
    items: list[TokenizedPair],
    pad_id: int,
    batch_size: int,
    rows_fn: RowsFn,
    adapter: bool,
    desc: str,
    max_tokens: int | None = None,
) -> dict[str, Tensor]:
    """`rows_fn(model, batch)` ([B, ...] per name) over all items, in one no-grad pass.

    adapter=False runs the base model (adapter disabled). Batches are grouped by length
    so little compute goes to padding (innerpo.data.batching.scoring_batches):
    `batch_size` pairs each, or with `max_tokens` as many as keep a batch's padded
    chosen + rejected tokens within that budget (at most `batch_size`). Rows come back in the items' order. Runs in the model's precision
    (innerpo.models.precision); values are stored as float32.
    """
    batches = scoring_batches(items, batch_size, max_tokens)
    out: dict[str, Tensor] = {}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with (
            nullcontext() if adapter or not hasattr(model, "disable_adapter") else model.disable_adapter(),
            autocast(model),
        ):
            for idx in tqdm(batches, desc=desc, leave=False, unit="batch"):
                rows = rows_fn(model, collate([items[i] for i in idx], pad_id).to(device))
                for name, t in rows.items():
                    if name not in out:
                        out[name] = torch.zeros((len(items), *t.shape[1:]), dtype=torch.float32)
                    out[name][idx] = t.float().cpu()
    finally:
        model.train(was_training)
    return out


def compute_reference(
    model, items: list[TokenizedPair], pad_id: int, batch_size: int, rows_fn: RowsFn, max_tokens: int | None = None
) -> dict[str, Tensor]:
    """The reference (adapter off) values of every pair."""
    return rows_pass(
        model, items, pad_id, batch_size, rows_fn, adapter=False, desc="reference pass", max_tokens=max_tokens
    )


def reference_table(
    model,
    items,
    pad_id: int,
    batch_size: int,
    extra: dict,
    rows_fn: RowsFn,
    root: Path | None = None,
    max_tokens: int | None = None,
) -> tuple[dict[str, Tensor], bool]:
    """(name → [N, ...] tensors in the order of `items`, hit).

    The file stores rows in a canonical order (sorted by pair digest), so any order or
    shuffle of the same pairs reuses it. The key includes the model's compute precision
    (a bf16 table never serves an fp32 run); batching (`batch_size`, `max_tokens`) is not
    in the key: it changes which pairs share a pass, not their values beyond float noise.
    """
    digests = item_digests(items)
    key = cache_key(weights_fingerprint(model), digests, {**extra, "precision": precision_of(model)})
    path = (root or cache_dir() / "reference") / f"{key}.safetensors"
    canonical = sorted(range(len(items)), key=lambda i: digests[i])
    position = torch.empty(len(items), dtype=torch.long)
    position[torch.tensor(canonical)] = torch.arange(len(items))  # item i sits at row position[i]
    cached = load_verified(path, key, len(items))
    hit = cached is not None
    if not hit:
        cached = compute_reference(model, [items[i] for i in canonical], pad_id, batch_size, rows_fn, max_tokens)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file(cached, str(tmp), metadata={"key": key, "sha256": _digest(cached), "rows": str(len(items))})
    return {name: t[position] for name, t in cached.items()}, hit
