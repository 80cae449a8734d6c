"""Preference accuracy on a model whose log-probs are known in closed form."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer
from innerpo.eval.accuracy import score_pairs

L = 5.0  # extra logit of the token "y" at every position


class ConstantNextToken(nn.Module):
    """Every position predicts the same distribution: softmax of a bias with b[y] = L, else 0."""

    def __init__(self, vocab: int, y: int):
        super().__init__()
        self.vocab = vocab
        self.head = nn.Linear(vocab, vocab)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.head.bias.data[y] = L
        self.config = SimpleNamespace()

    @property
    def base_model(self):
        return lambda input_ids, **kw: SimpleNamespace(
            last_hidden_state=nn.functional.one_hot(input_ids, self.vocab).float(), hidden_states=None
        )

    def get_output_embeddings(self):
        return self.head


def test_accuracy_mean_and_sum_and_nll_match_hand_computation(tiny_tok):
    V = len(tiny_tok)
    model = ConstantNextToken(V, tiny_tok.convert_tokens_to_ids("y"))
    # Each completion also carries 2 end tokens ("<|im_end|>", "\n"): k y's among n tokens
    # give sum = k·L − n·c and mean = (k/n)·L − c with c = log(e^L + V − 1).
    pairs = [
        Pair("q", "yy", "n"),  # k/n 2/4 vs 0/3: mean right; sums −14.0 vs −18.0: right
        Pair("q", "y", "nnnnnn"),  # 1/3 vs 0/8: right; −13.0 vs −48.1: right
        Pair("q", "nyy", "yy"),  # 2/5 vs 2/4: wrong; −20.0 vs −14.0: wrong
        Pair("q", "yyyyyy", "y"),  # 6/8 vs 1/3: right; −18.1 vs −13.0: wrong
        Pair("q", "yy", "yy"),  # an exact tie counts as wrong in both
    ]
    items = PairTokenizer(tiny_tok, 64).tokenize_all(pairs, "t")[0]
    scores = score_pairs(model, items, tiny_tok.pad_token_id, batch_size=3)["adapter"]
    c = math.log(math.exp(L) + V - 1)
    assert scores.accuracy == pytest.approx(3 / 5)
    assert scores.accuracy_sum == pytest.approx(2 / 5)
    # chosen totals: 2+1+2+6+2 = 13 y's among 4+3+5+8+4 = 24 tokens
    assert scores.nll == pytest.approx(c - 13 * L / 24, rel=1e-5)
    assert scores.n_pairs == 5


def test_base_and_adapter_scored_in_one_pass(tiny_model):
    from innerpo.models.config import ModelConfig
    from innerpo.models.load import add_lora

    model, tok = tiny_model
    peft_model = add_lora(model, ModelConfig(base_model="tiny-random", lora_r=4), seed=0)
    # A fresh LoRA adapter starts as the identity, so base and adapter agree exactly.
    items = PairTokenizer(tok, 64).tokenize_all([Pair("q", "ab", "abc"), Pair("r", "x", "yz")], "t")[0]
    scores = score_pairs(peft_model, items, tok.pad_token_id, batch_size=2)
    assert set(scores) == {"adapter", "base"}
    assert scores["adapter"].nll == pytest.approx(scores["base"].nll)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.add_(0.5)
    moved = score_pairs(peft_model, items, tok.pad_token_id, batch_size=2)
    assert moved["adapter"].nll != pytest.approx(moved["base"].nll)
    assert moved["base"].nll == pytest.approx(scores["base"].nll)
