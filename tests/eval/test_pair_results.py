"""Per-pair result rows: ids, columns and the values they are computed from."""

import math

import pandas as pd
import pytest
import torch

from innerpo.data.pairs import Pair
from innerpo.data.tokenize import TokenizedPair
from innerpo.eval.pair_results import pair_id, read_pair_results, shift_frame, write_pair_results


def test_pair_id_is_content_based_and_distinguishes_fields():
    a = Pair("q", "yes", "no")
    assert pair_id(a) == pair_id(Pair("q", "yes", "no"))
    assert len({pair_id(a), pair_id(Pair("q", "no", "yes")), pair_id(Pair("q2", "yes", "no"))}) == 3
    assert pair_id(Pair((("user", "q"),), "yes", "no")) != pair_id(a)


def test_shift_frame_hand_values_and_round_trip(tmp_path):
    pairs = [Pair("p0", "a", "b"), Pair("p1", "c", "d"), Pair("p2", "e", "f")]
    kept = [(0, TokenizedPair((1, 2), (3,), (4, 5))), (2, TokenizedPair((1,), (3, 3), (4,)))]  # pair 1 dropped
    adapter = {
        "chosen_sum": torch.tensor([-2.0, -3.0]),
        "chosen_ntok": torch.tensor([1.0, 2.0]),
        "rejected_sum": torch.tensor([-3.0, -1.0]),
        "rejected_ntok": torch.tensor([2.0, 1.0]),
    }
    frame = shift_frame("s", "shift", "ds", "test", kept, pairs, {"adapter": adapter})
    assert frame["index"].tolist() == [0, 2]
    assert frame["pair_id"].tolist() == [pair_id(pairs[0]), pair_id(pairs[2])]
    # pair 0: mean chosen -2 > mean rejected -1.5? no; summed -2 > -3 yes.
    # pair 2: mean chosen -1.5 > -1? no; summed -3 > -1? no.
    assert frame["adapter_correct"].tolist() == [False, False]
    assert frame["adapter_correct_sum"].tolist() == [True, False]
    assert frame["adapter_chosen_nll"].tolist() == pytest.approx([2.0, 1.5])
    assert frame["chosen_tokens"].tolist() == [1, 2] and frame["prompt_tokens"].tolist() == [2, 1]
    # p(chosen) = σ(mean chosen − mean rejected): σ(−0.5) and σ(−0.5)
    assert frame["adapter_p_chosen"].tolist() == pytest.approx([1 / (1 + math.exp(0.5))] * 2)
    assert "base_correct" not in frame
    write_pair_results(tmp_path, frame)
    pd.testing.assert_frame_equal(read_pair_results(tmp_path), frame)
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.parquet"]  # no temporary left behind
