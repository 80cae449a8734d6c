"""Reference log-probs computed once, stored as safetensors, reused across runs.

The reference model is the base model with the adapter off; it never changes during
training, so its completion log-probs for a fixed tokenized dataset are a constant.
They are computed in one no-grad pass and stored under
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
from contextlib import nullcontext
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm.auto import tqdm

from innerpo.data.batching import collate
from innerpo.data.tokenize import TokenizedPair
from innerpo.io import atomic_path
from innerpo.models.forward import forward_pairs
from innerpo.paths import cache_dir

FIELDS = ("chosen_sum", "chosen_ntok", "rejected_sum", "rejected_ntok")


def weights_fingerprint(model) -> str:
    """BLAKE2 of the base model's parameters and buffers (adapter weights excluded)."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(model.state_dict().items()):
        if "lora_" in name:
            continue
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def data_fingerprint(items: list[TokenizedPair]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for it in items:
        h.update(json.dumps((it.prompt, it.chosen, it.rejected)).encode())
    return h.hexdigest()


def cache_key(weights: str, items: list[TokenizedPair], extra: dict) -> str:
    payload = json.dumps({"weights": weights, "data": data_fingerprint(items), "extra": extra}, sort_keys=True)
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
    if any(name not in tensors or tensors[name].shape != (n,) for name in FIELDS):
        return None
    return tensors


@torch.no_grad()
def compute_reference(model, items: list[TokenizedPair], pad_id: int, batch_size: int) -> dict[str, Tensor]:
    """One no-grad pass with the adapter off; batches sorted by length to waste no padding."""
    order = sorted(range(len(items)), key=lambda i: len(items[i].prompt) + max(len(items[i].chosen), len(items[i].rejected)))
    out = {name: torch.zeros(len(items), dtype=torch.float32) for name in FIELDS}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext():
            for start in tqdm(range(0, len(order), batch_size), desc="reference log-probs", leave=False, unit="batch"):
                idx = order[start : start + batch_size]
                res = forward_pairs(model, collate([items[i] for i in idx], pad_id).to(device))
                for name, t in zip(FIELDS, (res.chosen.sum, res.chosen.ntok, res.rejected.sum, res.rejected.ntok)):
                    out[name][idx] = t.float().cpu()
    finally:
        model.train(was_training)
    return out


def reference_table(model, items, pad_id: int, batch_size: int, extra: dict, root: Path | None = None) -> tuple[dict[str, Tensor], bool]:
    """(tensors [N] per FIELDS, hit) — from the cache when a verified file exists."""
    key = cache_key(weights_fingerprint(model), items, extra)
    path = (root or cache_dir() / "reference") / f"{key}.safetensors"
    cached = load_verified(path, key, len(items))
    if cached is not None:
        return cached, True
    tensors = compute_reference(model, items, pad_id, batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"key": key, "sha256": _digest(tensors), "rows": str(len(items))})
    return tensors, False
