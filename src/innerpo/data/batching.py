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
        return PairBatch(
            self.input_ids.to(device), self.attention_mask.to(device), self.completion_mask.to(device), index
        )


def collate(items: list[TokenizedPair], pad_id: int) -> PairBatch:
    seqs = [(p.prompt, p.chosen) for p in items] + [(p.prompt, p.rejected) for p in items]
    return PairBatch(*_pad_sequences(seqs, pad_id))


def collate_indexed(rows: list[tuple[int, TokenizedPair]], pad_id: int) -> PairBatch:
    """Collate (dataset index, pair) rows, keeping the indices (for cached per-pair values)."""
    batch = collate([item for _, item in rows], pad_id)
    batch.index = torch.tensor([i for i, _ in rows], dtype=torch.long)
    return batch


def scoring_batches(items: list[TokenizedPair], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Index batches for a no-grad scoring pass, ordered to waste little compute on padding.

    Each batch holds `batch_size` pairs, or with `max_tokens` as many (at most
    `batch_size`) as keep its padded [2B, T] tensor within that many tokens (a pair
    longer than the budget gets a batch of one). Two orders are tried, by total length
    and by the longer completion's length, and the one whose batches cost fewer padded
    tokens wins: the forward runs a pair's prompt once and its two completions after
    it (innerpo.models.forward), so it pays B·P_max + 2B·C_max per batch, and when
    chosen and rejected lengths differ a lot, grouping by completion length pads less.
    """
    prompt = [len(it.prompt) for it in items]
    completion = [max(len(it.chosen), len(it.rejected)) for it in items]
    orders = [
        sorted(range(len(items)), key=lambda i: (prompt[i] + completion[i], completion[i])),
        sorted(range(len(items)), key=lambda i: (completion[i], prompt[i])),
    ]

    def cost(batches):
        return sum(len(b) * (max(prompt[i] for i in b) + 2 * max(completion[i] for i in b)) for b in batches)

    return min((_cut(o, prompt, completion, batch_size, max_tokens) for o in orders), key=cost)


def _cut(
    order: list[int], prompt: list[int], completion: list[int], batch_size: int, max_tokens: int | None
) -> list[list[int]]:
    if max_tokens is None:
        return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if max_tokens < 1:
        raise ValueError(f"max_tokens_per_batch must be >= 1, got {max_tokens}")
    batches: list[list[int]] = []
    width = 0
    for i in order:
        new_width = max(width, prompt[i] + completion[i])
        if batches and len(batches[-1]) < batch_size and 2 * (len(batches[-1]) + 1) * new_width <= max_tokens:
            batches[-1].append(i)
            width = new_width
        else:
            batches.append([i])
            width = prompt[i] + completion[i]
    return batches


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


# --- unpaired data (KTO) and mismatched batches ---------------------------------------


@dataclass
class UnpairedBatch:
    """B single completions (prompt/completion/label data), right-padded [B, T].

    `num_pairs` is the number of examples B: the loop weights metrics by it, and
    `forward_pairs` (which splits rows at `num_pairs`) returns every row as `chosen` and
    an empty `rejected`, i.e. one SeqLogps [B] for the whole batch.
    """

    input_ids: Tensor  # [B, T] long, right-padded
    attention_mask: Tensor  # [B, T] long
    completion_mask: Tensor  # [B, T] bool
    labels: Tensor  # [B] bool, True = desirable
    index: Tensor | None = None  # [B] long, position of each example in the dataset

    @property
    def padding_share(self) -> float:
        return 1.0 - self.attention_mask.float().mean().item()

    @property
    def num_pairs(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device) -> "UnpairedBatch":
        index = None if self.index is None else self.index.to(device)
        return UnpairedBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.completion_mask.to(device),
            self.labels.to(device),
            index,
        )


def _pad_sequences(seqs: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """(prompt, completion) token lists → right-padded ids, attention mask, completion mask."""
    width = max(len(a) + len(b) for a, b in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    comp = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, (prompt, completion) in enumerate(seqs):
        n, m = len(prompt), len(completion)
        ids[i, : n + m] = torch.tensor(list(prompt) + list(completion), dtype=torch.long)
        attn[i, : n + m] = 1
        comp[i, n : n + m] = True
    return ids, attn, comp


def collate_unpaired(items: list, pad_id: int) -> UnpairedBatch:
    """TokenizedExample items (innerpo.data.unpaired) → UnpairedBatch."""
    ids, attn, comp = _pad_sequences([(it.prompt, it.completion) for it in items], pad_id)
    return UnpairedBatch(ids, attn, comp, torch.tensor([bool(it.label) for it in items], dtype=torch.bool))


def collate_unpaired_indexed(rows: list[tuple[int, object]], pad_id: int) -> UnpairedBatch:
    batch = collate_unpaired([item for _, item in rows], pad_id)
    batch.index = torch.tensor([i for i, _ in rows], dtype=torch.long)
    return batch


def item_length(item) -> int:
    """Tokens of the longest sequence an item yields (pair: prompt + longer completion)."""
    if hasattr(item, "completion"):
        return len(item.prompt) + len(item.completion)
    return len(item.prompt) + max(len(item.chosen), len(item.rejected))


def collate_items_indexed(rows: list[tuple[int, object]], pad_id: int):
    """collate_indexed for pairs, collate_unpaired_indexed for unpaired examples."""
    if rows and hasattr(rows[0][1], "completion"):
        return collate_unpaired_indexed(rows, pad_id)
    return collate_indexed(rows, pad_id)


def _split_rows(
    input_ids: Tensor, attention_mask: Tensor, completion_mask: Tensor
) -> list[tuple[list[int], list[int]]]:
    """Each row's (prompt tokens, completion tokens), read back from a right-padded batch."""
    out = []
    for ids, attn, comp in zip(input_ids.tolist(), attention_mask.tolist(), completion_mask.tolist()):
        prompt = [t for t, a, c in zip(ids, attn, comp) if a and not c]
        completion = [t for t, c in zip(ids, comp) if c]
        out.append((prompt, completion))
    return out


def _rolled(seqs: list[tuple[list[int], list[int]]], shift: int) -> list[tuple[list[int], list[int]]]:
    """Row i keeps its prompt and takes the completion of row i − shift (mod len)."""
    n = len(seqs)
    return [(seqs[i][0], seqs[(i - shift) % n][1]) for i in range(n)]


def roll_completions(batch, shift: int = 1, pad_id: int = 0):
    """The mismatched batch KTO's KL reference point is estimated on (TRL's convention).

    Every prompt keeps its place and is followed by the completion of the example
    `shift` places before it in the batch, cyclically: (x_1, y_B), (x_2, y_1), ...,
    (x_B, y_{B−1}) for shift 1 — TRL's KTOTrainer rotation. For a PairBatch the chosen
    and the rejected completions are rotated separately (row i of each half takes pair
    i−1's completion of that half), so the mismatched set holds the same 2B completions
    as the batch. An UnpairedBatch keeps its labels (unused for the KL sequences). The
    result has no `index` (its rows are in no cached table). With one pair or example
    the rotation is the identity: a batch of one has no other completion to borrow.
    Mismatched sequences may be longer than `max_length` (prompt i with a longer
    completion); nothing is cut, as in TRL. Padding positions hold `pad_id` (they are
    masked, so the value does not matter).
    """
    seqs = _split_rows(batch.input_ids, batch.attention_mask, batch.completion_mask)
    if isinstance(batch, PairBatch):
        b = batch.num_pairs
        ids, attn, comp = _pad_sequences(_rolled(seqs[:b], shift) + _rolled(seqs[b:], shift), pad_id)
        return PairBatch(ids, attn, comp).to(batch.input_ids.device)
    ids, attn, comp = _pad_sequences(_rolled(seqs, shift), pad_id)
    return UnpairedBatch(ids, attn, comp, batch.labels.clone()).to(batch.input_ids.device)
