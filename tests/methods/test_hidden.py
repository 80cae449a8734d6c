"""Hidden-state methods on tiny-random: collection, no extra pass, cache parity, transforms."""

import dataclasses

import pytest
import torch

from innerpo.data.batching import collate_indexed
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer
from innerpo.methods.build import build_method
from innerpo.methods.config import MethodConfig
from innerpo.models import ref_cache
from innerpo.models.config import ModelConfig
from innerpo.models.load import add_lora


@pytest.fixture
def setup(tiny_model):
    model, tok = tiny_model
    model = add_lora(model, ModelConfig(base_model="tiny-random", lora_r=4), seed=0)
    pairs = [Pair(f"Question {i}: what comes next?", "a b c"[: 1 + i], "zz" * (i + 1)) for i in range(4)]
    items = PairTokenizer(tok, 64).tokenize_all(pairs, "t")[0]
    batch = collate_indexed(list(enumerate(items)), tok.pad_token_id)
    return model, tok, items, batch


def method(model, **kw):
    m = build_method(MethodConfig(hidden_loss="innerpo", **kw))
    m.bind(model)
    return m


def test_hs_collects_the_chosen_blocks_outputs(setup):
    model, tok, items, batch = setup
    m = method(model, layers="1,-2")  # 4 blocks: 1 and 2
    inputs = m.loss_inputs(model, batch)
    assert inputs.hidden.layers == ["1", "2"]
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
    mask = batch.completion_mask.unsqueeze(-1).float()
    expected = (out.hidden_states[2] * mask).sum(1) / mask.sum(1)  # block 1's output
    b = batch.num_pairs
    torch.testing.assert_close(inputs.hidden.pooled["1"].policy_chosen, expected[:b], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(inputs.hidden.pooled["1"].policy_rejected, expected[b:], rtol=1e-5, atol=1e-5)


def test_side_collects_projection_inputs_of_the_chosen_blocks(setup):
    model, tok, items, batch = setup
    inputs = method(model, collect="side", layers="0:4:3").loss_inputs(model, batch)
    assert inputs.hidden.layers == ["0.o_proj", "0.down_proj", "3.o_proj", "3.down_proj"]
    assert inputs.hidden.pooled["3.down_proj"].policy_chosen.shape == (4, 128)  # MLP width


def count_passes(monkeypatch):
    """Count forward_pairs calls made by the methods (each is one policy or reference pass)."""
    from innerpo.methods import base, hidden
    from innerpo.models import forward

    calls = []

    def counted(*a, **kw):
        calls.append(1)
        return forward.forward_pairs(*a, **kw)

    monkeypatch.setattr(base, "forward_pairs", counted)
    monkeypatch.setattr(hidden, "forward_pairs", counted)
    return calls


def test_no_extra_forward_and_cached_reference_matches_live(setup, monkeypatch):
    model, tok, items, batch = setup
    m = method(model, transform="supr")
    calls = count_passes(monkeypatch)
    live = m.loss_inputs(model, batch)
    assert len(calls) == 2  # policy + reference, the passes DPO runs; states ride along
    table = ref_cache.compute_reference(model, items, tok.pad_token_id, 3, m.reference_rows)
    m.use_reference_table(table)
    calls.clear()
    cached = m.loss_inputs(model, batch)
    assert len(calls) == 1  # the policy pass only
    for k in live.hidden.layers:
        for a, b in zip(live.hidden.pooled[k], cached.hidden.pooled[k]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(live.ref_chosen.sum, cached.ref_chosen.sum, rtol=1e-5, atol=1e-5)


def test_states_from_the_shared_prompt_pass_equal_the_plain_pass(setup):
    """Capture keeps the faster shared-prompt pass; its pooled states match the plain one."""
    from innerpo.models import forward

    model, tok, items, batch = setup
    m = method(model, layers="1,2")
    assert forward._shared_prompt_plan(model, model.config, batch, observing_hooks=True) is not None
    shared = m.loss_inputs(model, batch)
    plain_batch = dataclasses.replace(batch, completion_mask=batch.completion_mask.clone())
    import innerpo.methods.hidden as hidden

    real = hidden.forward_pairs
    hidden.forward_pairs = lambda model, batch, **kw: real(
        model, batch, output_hidden_states=True
    )  # forces one [2B, T] pass
    try:
        plain = m.loss_inputs(model, plain_batch)
    finally:
        hidden.forward_pairs = real
    for k in shared.hidden.layers:
        for a, b in zip(shared.hidden.pooled[k], plain.hidden.pooled[k]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_supr_drops_the_first_collected_layer_and_needs_two(setup):
    model, tok, items, batch = setup
    inputs = method(model, transform="supr", layers="1,2,3").loss_inputs(model, batch)
    assert inputs.hidden.layers == ["2", "3"]
    with pytest.raises(ValueError, match="consecutive collected layers"):
        method(model, transform="supr", layers="2")


def test_trainable_transform_is_a_method_parameter_and_learns(setup):
    model, tok, items, batch = setup
    m = build_method(MethodConfig(hidden_loss="rank", transform="etherplus", layers="1,2"))
    m.bind(model)
    params = [p for p in m.parameters() if p.requires_grad]
    assert params
    # Perturb the adapter so policy and reference differ, then backprop the hidden loss.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    m.loss(m.loss_inputs(model, batch)).loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def test_bad_layer_spec_is_refused_with_the_accepted_forms(setup):
    model, *_ = setup
    with pytest.raises(ValueError, match="accepted forms"):
        method(model, layers="1;2")
    with pytest.raises(ValueError, match="out of range"):
        method(model, layers="7")


def test_kto_as_the_output_loss_gets_its_kl_inputs(setup):
    model, tok, items, batch = setup
    m = build_method(MethodConfig(losses=["kto"], hidden_loss="innerpo", layers="1,2"))
    m.bind(model)
    out = m.loss(m.loss_inputs(model, batch))
    assert torch.isfinite(out.loss) and "kl" in out.metrics


def test_supr_masks_come_from_the_reference_and_are_shared_within_each_side(setup):
    """A step of the adapter must not move supr's masks: policy and reference states of a side
    keep the same coordinates (those the reference's state selects)."""
    model, tok, items, batch = setup
    m = method(model, transform="supr", layers="1,2,3")
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)  # policy ≠ reference
    inputs = m.loss_inputs(model, batch)
    for k, q in inputs.hidden.pooled.items():
        assert torch.equal(q.policy_chosen == 0, q.ref_chosen == 0), k
        assert torch.equal(q.policy_rejected == 0, q.ref_rejected == 0), k
        assert 0 < (q.ref_chosen != 0).float().mean() < 1
    assert set(m.after_backward(model)) == {"supr/kept/2", "supr/kept/3"}


def test_first_step_check_names_supr_as_the_cause(setup):
    from innerpo.methods.hidden import InertHiddenTermError

    model, tok, items, batch = setup
    m = method(model, transform="supr", layers="1,2,3", supr_threshold=1e6)
    with pytest.raises(
        InertHiddenTermError, match="supr kept no coordinates at layer 2: threshold 1000000.0 is above every rise"
    ):
        m.loss(m.loss_inputs(model, batch))
    with torch.no_grad():  # evaluation-time calls are not checked
        method(model, transform="supr", layers="1,2,3", supr_threshold=1e6).loss(m.loss_inputs(model, batch))
