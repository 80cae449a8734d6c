"""Scoring with the adapter merged into copies of the weights (innerpo.models.merge)."""

import pytest
import torch

from innerpo.data.batching import collate
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer
from innerpo.models.config import ModelConfig
from innerpo.models.forward import logp_rows
from innerpo.models.load import add_lora
from innerpo.models.merge import merged_adapter
from innerpo.models.precision import prepare_model
from innerpo.models.ref_cache import weights_fingerprint


def _lora(model, **kw):
    model = add_lora(model, ModelConfig(base_model="tiny-random", lora_r=4, **kw), seed=0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    return model.eval()


def _batch(tok):
    pt = PairTokenizer(tok, 256)
    return collate(
        [
            pt(Pair("Name a colour, please.", "Blue is a colour.", "No.")),
            pt(Pair("What is 2+2?", "4", "Five, I think.")),
        ],
        tok.pad_token_id,
    )


def _sums(model, batch):
    with torch.no_grad():
        rows = logp_rows(model, batch)
    return torch.cat([rows["chosen_sum"], rows["rejected_sum"]])


def test_merged_scores_equal_the_adapter_and_the_model_is_restored_exactly(tiny_model):
    model, tok = tiny_model
    model = _lora(model)
    batch = _batch(tok)
    weights = {n: (p, p.detach().clone()) for n, p in model.named_parameters()}
    fingerprint = weights_fingerprint(model)
    plain = _sums(model, batch)
    with torch.no_grad(), model.disable_adapter():
        base = _sums(model, batch)
    with merged_adapter(model) as merged:
        assert merged
        inside = _sums(model, batch)
    torch.testing.assert_close(inside, plain, rtol=1e-5, atol=1e-4)
    assert (inside - base).abs().max() > 0.1  # the adapter's effect is in the merged weights
    for n, p in model.named_parameters():  # the same tensors, the same values
        assert p is weights[n][0] and torch.equal(p, weights[n][1]), n
    assert weights_fingerprint(model) == fingerprint
    torch.testing.assert_close(_sums(model, batch), plain, rtol=0, atol=0)  # the adapter is on again


def test_weights_are_restored_when_the_pass_fails(tiny_model):
    model, _ = tiny_model
    model = _lora(model)
    before = {n: p for n, p in model.named_parameters()}
    with pytest.raises(KeyboardInterrupt):
        with merged_adapter(model):
            raise KeyboardInterrupt
    assert {n: p for n, p in model.named_parameters()} == before
    assert not model.base_model.model.model.layers[0].self_attn.q_proj.disable_adapters


def test_not_merged_where_it_would_not_be_exact(tiny_model):
    model, _ = tiny_model
    with merged_adapter(model) as merged:  # no adapter at all
        assert not merged
    bf16 = prepare_model(_lora(model), "bf16")  # bf16 weights would round the delta away
    with merged_adapter(bf16) as merged:
        assert not merged
    from peft import LoraConfig, get_peft_model

    from innerpo.models import tiny

    dora = get_peft_model(tiny.build()[0], LoraConfig(r=4, target_modules=["q_proj", "v_proj"], use_dora=True))
    with merged_adapter(dora) as merged:  # a LoRA variant: its delta is not B·A alone
        assert not merged
