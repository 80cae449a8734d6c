"""Evaluation batches sized by tokens (innerpo.data.batching.scoring_batches) and the
scoring pass that uses them (innerpo.models.ref_cache.rows_pass)."""

import pytest
import torch

from innerpo.data.batching import scoring_batches
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer, TokenizedPair
from innerpo.models.forward import logp_rows
from innerpo.models.ref_cache import rows_pass


def item(p, c, r):
    return TokenizedPair(prompt=tuple(range(p)), chosen=tuple(range(c)), rejected=tuple(range(r)))


def test_token_budget_by_hand():
    # lengths (prompt + longer completion): 10, 20, 30, 40; padded [2B, T] tokens = 2·B·T
    items = [item(5, 5, 1), item(10, 10, 1), item(15, 15, 1), item(20, 20, 1)]
    # budget 80: {10, 20} costs 2·2·20 = 80 (fits); adding 30 would cost 2·3·30 = 180
    assert scoring_batches(items, batch_size=16, max_tokens=80) == [[0, 1], [2], [3]]
    assert scoring_batches(items, batch_size=16, max_tokens=10_000) == [[0, 1, 2, 3]]
    assert scoring_batches(items, batch_size=3, max_tokens=10_000) == [[0, 1, 2], [3]]  # batch_size caps B
    assert scoring_batches(items, batch_size=16, max_tokens=1) == [[0], [1], [2], [3]]  # too long alone: one each
    with pytest.raises(ValueError, match="max_tokens_per_batch"):
        scoring_batches(items, 4, max_tokens=0)


def test_completion_order_wins_when_it_pads_less():
    """Pairs 0, 2 have short prompts and long completions, 1, 3 long prompts and short
    completions; by total length (60, 61, 62, 63) batches of two mix them, at a cost
    (B·(P_max + 2·C_max) per batch) of 2·(50 + 100) + 2·(50 + 104) = 608 padded tokens;
    by completion length they pair up: 2·(50 + 26) + 2·(10 + 104) = 380."""
    items = [item(10, 50, 50), item(50, 11, 11), item(10, 52, 52), item(50, 13, 13)]
    batches = scoring_batches(items, batch_size=2)
    assert sorted(map(sorted, batches)) == [[0, 2], [1, 3]]


def test_every_pair_once_and_values_independent_of_batching(tiny_model):
    model, tok = tiny_model
    pt = PairTokenizer(tok, 128)
    pairs = [Pair("q" * (1 + 7 * i % 23), "yes " * (1 + i % 5), "no" * (1 + (3 * i) % 7)) for i in range(11)]
    items = pt.tokenize_all(pairs, "t")[0]
    for mt in (None, 1, 300, 5000):
        flat = sorted(i for b in scoring_batches(items, 4, mt) for i in b)
        assert flat == list(range(len(items)))
    a = rows_pass(model, items, tok.pad_token_id, 4, logp_rows, adapter=True, desc="t")
    b = rows_pass(model, items, tok.pad_token_id, 16, logp_rows, adapter=True, desc="t", max_tokens=300)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-4)
