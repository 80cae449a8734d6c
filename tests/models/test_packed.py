"""Padding-free scoring (innerpo.models.packed): the packed row's layout by hand, and
log-probs equal to the padded pass's, with the fallbacks where packing must not run."""

import pytest
import torch

from innerpo.data.batching import collate
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer, TokenizedPair
from innerpo.models import forward, packed
from innerpo.models.config import ModelConfig
from innerpo.models.forward import forward_pairs, logp_rows
from innerpo.models.load import add_lora
from innerpo.models.precision import prepare_model


def _items(tok):
    pt = PairTokenizer(tok, 512)
    return [
        pt(Pair("Name a colour, please.", "Blue is a colour, and so is green.", "No.")),
        pt(Pair("What is 2+2? Answer briefly.", "4", "It is five, I believe, or maybe six.")),
        pt(Pair("Say hello " * 12, "hello", "Goodbye to you.")),
    ]


def _lora(model):
    model = add_lora(model, ModelConfig(base_model="tiny-random", lora_r=4), seed=0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    return model.eval()


def _padded(model, batch):
    out = forward_pairs(model, batch)
    return torch.cat([out.chosen.sum, out.rejected.sum]), torch.cat([out.chosen.ntok, out.rejected.ntok])


def test_pack_lays_out_prompt_chosen_rejected_with_hand_positions():
    # pair 0: prompt [1 2], chosen [3], rejected [4 5]; pair 1: prompt [6], chosen [7 8], rejected [9]
    items = [TokenizedPair([1, 2], [3], [4, 5]), TokenizedPair([6], [7, 8], [9])]
    batch = collate(items, 0)
    row, packing = packed.pack(batch, torch.tensor([2, 1]), torch.tensor([1, 2, 2, 1]), float32=False)
    assert row.ids.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert row.positions.tolist() == [0, 1, 2, 2, 3, 0, 1, 2, 1]  # both completions continue after their prompt
    # each completion token is predicted by the state before it; a completion's first token by the prompt's last
    assert row.predictors.tolist() == [1, 1, 3, 5, 6, 5]
    assert row.targets.tolist() == [3, 4, 5, 7, 8, 9]
    assert row.owner.tolist() == [0, 2, 2, 1, 1, 3]  # rows of the [2B] layout: chosen 0, 1, then rejected 2, 3
    assert (packing.start, packing.prompt, packing.chosen, packing.rejected) == ([0, 5], [2, 1], [1, 2], [2, 1])
    mask = packing.masks[0][1][0, 0]  # rejected of pair 0: 2 prompt keys, then its 2 own tokens causally
    assert (mask == 0).tolist() == [[True, True, True, False], [True, True, True, True]]


def test_packed_rows_equal_the_padded_pass(tiny_model):
    model, tok = tiny_model
    model = _lora(model)
    batch = collate(_items(tok), tok.pad_token_id)
    assert batch.padding_share > 0.2  # the lengths differ, so the padded pass pads
    with torch.no_grad():
        rows = forward.rows_of(*forward._packed_logps(model, batch))
        sums, ntok = _padded(model, batch)
    assert rows is not None
    torch.testing.assert_close(torch.cat([rows["chosen_sum"], rows["rejected_sum"]]), sums, rtol=1e-5, atol=1e-4)
    assert torch.cat([rows["chosen_ntok"], rows["rejected_ntok"]]).tolist() == ntok.tolist()
    assert model.config._attn_implementation == "sdpa"  # switched back after the call


def test_packed_rows_in_bf16_keep_float32_attention_and_match_the_padded_pass(tiny_model):
    model, tok = tiny_model
    model = prepare_model(_lora(model), "bf16")
    batch = collate(_items(tok), tok.pad_token_id)
    with torch.no_grad():
        rows = logp_rows(model, batch)
        sums, _ = _padded(model, batch)
    got = torch.cat([rows["chosen_sum"], rows["rejected_sum"]])
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    torch.testing.assert_close(got, sums, rtol=2e-2, atol=0.5)  # bf16 GEMMs in a different order


def test_grouped_query_attention_is_packed_correctly():
    """Query heads share key/value heads (SmolLM2: 9 query, 3 key/value heads)."""
    from innerpo.models import tiny

    model, tok = tiny.build()
    assert model.config.num_key_value_heads < model.config.num_attention_heads
    batch = collate(_items(tok), tok.pad_token_id)
    with torch.no_grad():
        rows = forward.rows_of(*forward._packed_logps(model, batch))
        sums, _ = _padded(model, batch)
    torch.testing.assert_close(torch.cat([rows["chosen_sum"], rows["rejected_sum"]]), sums, rtol=1e-5, atol=1e-4)


def test_packing_is_not_used_with_gradients_or_hooks_or_unshared_prompts(tiny_model):
    model, tok = tiny_model
    model = _lora(model)
    items = _items(tok)
    batch = collate(items, tok.pad_token_id)
    calls = []
    real = packed.pack
    packed.pack = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        # with gradients: the padded pass, and gradients reach the LoRA weights
        rows = logp_rows(model, batch)
        rows["chosen_sum"].sum().backward()
        assert not calls and any(p.grad is not None for n, p in model.named_parameters() if "lora_" in n)
        with torch.no_grad():
            handle = model.get_base_model().model.layers[0].register_forward_hook(lambda *a: None)
            try:
                assert forward._packed_logps(model, batch) is None  # a hook would see the packed layout
            finally:
                handle.remove()
            other = collate(items[:1], tok.pad_token_id)
            mixed = type(batch)(other.input_ids.clone(), other.attention_mask, other.completion_mask)
            mixed.input_ids[1, 0] = mixed.input_ids[0, 0] + 1  # chosen and rejected rows no longer share a prompt
            assert forward._packed_logps(model, mixed) is None
            assert not calls
            assert forward._packed_logps(model, batch) is not None and calls
    finally:
        packed.pack = real


def test_the_attention_function_refuses_to_run_without_a_layout():
    q = torch.zeros(1, 2, 3, 4)
    with pytest.raises(RuntimeError, match="packing layout"):
        packed.packed_attention_forward(None, q, q, q, None)


def test_chunked_head_equals_the_whole_batch_head(tiny_model, monkeypatch):
    model, _ = tiny_model
    head = model.get_output_embeddings()
    hidden = torch.randn(37, model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    targets = torch.randint(0, model.config.vocab_size, (37,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = forward.token_logps(hidden, head, targets)  # 37 <= HEAD_CHUNK: one piece
        monkeypatch.setattr(forward, "HEAD_CHUNK", 8)
        chunked = forward.token_logps(hidden, head, targets)
    assert chunked.shape == (37,)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)


def test_packing_is_not_used_for_eager_attention_or_soft_capped_logits(tiny_model):
    model, tok = tiny_model
    batch = collate(_items(tok), tok.pad_token_id)
    with torch.no_grad():
        assert forward._packed_logps(model, batch) is not None
        model.config.attn_logit_softcapping = 30.0  # SDPA cannot soft-cap; the model's own attention must run
        assert forward._packed_logps(model, batch) is None
        model.config.attn_logit_softcapping = None
        model.set_attn_implementation("eager")
        assert forward._packed_logps(model, batch) is None
