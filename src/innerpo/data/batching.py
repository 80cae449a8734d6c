"""Collate tokenized pairs into one right-padded tensor batch.

Chosen and rejected sequences are stacked into a single [2B, T] batch (rows 0..B-1
chosen, B..2B-1 rejected) so one forward pass serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from innerpo.data.tokenize import TokenizedPair


@dataclass
class PairBatch:
    input_ids: Tensor  # [2B, T] long, right-padded
    attention_mask: Tensor  # [2B, T] long, 1 on real tokens
    completion_mask: Tensor  # [2B, T] bool, True on completion tokens (the ones scored)
    index: Tensor | None = None  # [B] long, position of each pair in the dataset

    @property
    def padding_share(self) -> float:
        """Share of the [2B, T] positions that are padding."""
        return 1.0 - self.attention_mask.float().mean().item()

    @property
    def num_pairs(self) -> int:
        return self.input_ids.shape[0] // 2

    def to(self, device) -> "PairBatch":
        index = None if self.index is None else self.index.to(device)
        return PairBatch(self.input_ids.to(device), self.attention_mask.to(device), self.completion_mask.to(device), index)


def collate(items: list[TokenizedPair], pad_id: int) -> PairBatch:
    seqs = [(p.prompt, p.chosen) for p in items] + [(p.prompt, p.rejected) for p in items]
    width = max(len(a) + len(b) for a, b in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    comp = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, (prompt, completion) in enumerate(seqs):
        n, m = len(prompt), len(completion)
        ids[i, : n + m] = torch.tensor(prompt + completion)
        attn[i, : n + m] = 1
        comp[i, n : n + m] = True
    return PairBatch(ids, attn, comp)


def collate_indexed(rows: list[tuple[int, TokenizedPair]], pad_id: int) -> PairBatch:
    """Collate (dataset index, pair) rows, keeping the indices (for cached per-pair values)."""
    batch = collate([item for _, item in rows], pad_id)
    batch.index = torch.tensor([i for i, _ in rows], dtype=torch.long)
    return batch


class EpochBatchSampler:
    """Batches of indices, a new order each epoch, fixed by (seed, epoch).

    With `lengths`, batches are grouped by length so padding stays small: each epoch the
    indices are shuffled, cut into windows of `group_batches` batches, each window is
    sorted by length and cut into batches, and the batch order is shuffled again. Every
    index appears exactly once per epoch; at most one batch per window is short.
    """

    def __init__(self, n: int, batch_size: int, seed: int, lengths: list[int] | None = None, group_batches: int = 32):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if lengths is not None and len(lengths) != n:
            raise ValueError(f"got {len(lengths)} lengths for {n} items")
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0
        self.lengths, self.window = lengths, batch_size * group_batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=gen).tolist()
        if self.lengths is None:
            return [order[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        batches = []
        for w in range(0, self.n, self.window):
            window = sorted(order[w : w + self.window], key=lambda i: self.lengths[i])
            batches += [window[i : i + self.batch_size] for i in range(0, len(window), self.batch_size)]
        shuffled = torch.randperm(len(batches), generator=gen).tolist()
        return [batches[i] for i in shuffled]

    def __iter__(self):
        yield from self._batches()

    def __len__(self) -> int:
        if self.lengths is None:
            return -(-self.n // self.batch_size)
        return sum(-(-min(self.window, self.n - w) // self.batch_size) for w in range(0, self.n, self.window))
