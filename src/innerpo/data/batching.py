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

    @property
    def num_pairs(self) -> int:
        return self.input_ids.shape[0] // 2

    def to(self, device) -> "PairBatch":
        return PairBatch(self.input_ids.to(device), self.attention_mask.to(device), self.completion_mask.to(device))


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


class EpochBatchSampler:
    """Shuffled batches of indices, a new order each epoch, fixed by (seed, epoch).

    Every index appears exactly once per epoch; the last batch may be short.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=gen).tolist()
        for start in range(0, self.n, self.batch_size):
            yield order[start : start + self.batch_size]

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)
