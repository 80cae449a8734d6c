"""Module-output collection (`--method.collect=modules`), norm_before_reduce, and the pair
weights' statistics through the method layer, on tiny-random: what is captured, the
shared-prompt pass, the reference cache (live = cached; the key follows the pattern),
validation before anything is written."""

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
    with torch.no_grad():  # a non-zero adapter, so policy and reference differ
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    pairs = [Pair(f"Question {i}: what comes next?", "a b c"[: 1 + i], "zz" * (i + 1)) for i in range(4)]
    items = PairTokenizer(tok, 64).tokenize_all(pairs, "t")[0]
    batch = collate_indexed(list(enumerate(items)), tok.pad_token_id)
    return model, tok, items, batch


def method(model, **kw):
    m = build_method(MethodConfig(hidden_loss="innerpo", **kw))
    m.bind(model)
    return m


def test_modules_collects_the_outputs_of_the_matched_modules(setup):
    model, tok, items, batch = setup
    m = method(model, collect="modules", collect_modules=r".*\.(q|v)_proj", layers="1,2")
    assert list(m.points) == ["1.self_attn.q_proj", "1.self_attn.v_proj", "2.self_attn.q_proj", "2.self_attn.v_proj"]
    inputs = m.loss_inputs(model, batch)
    # expected: the LoRA-wrapped q_proj's output over the plain pass, pooled over completion tokens
    seen = {}
    q = model.get_base_model().model.layers[1].self_attn.q_proj
    h = q.register_forward_hook(lambda mod, a, out: seen.__setitem__("out", out))
    model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    h.remove()
    mask = batch.completion_mask.unsqueeze(-1).float()
    expected = (seen["out"] * mask).sum(1) / mask.sum(1)
    b = batch.num_pairs
    torch.testing.assert_close(
        inputs.hidden.pooled["1.self_attn.q_proj"].policy_chosen, expected[:b], rtol=1e-5, atol=1e-5
    )
    # the reference is the same module with the adapter off: different from the policy here
    assert not torch.allclose(inputs.hidden.pooled["1.self_attn.q_proj"].ref_chosen, expected[:b])
    v = model.get_base_model().model.layers[1].self_attn.v_proj
    assert inputs.hidden.pooled["1.self_attn.v_proj"].policy_chosen.shape[-1] == v.out_features


def test_modules_from_the_shared_prompt_pass_equal_the_plain_pass(setup):
    import innerpo.methods.hidden as hidden
    from innerpo.models import forward

    model, tok, items, batch = setup
    m = method(model, collect="modules", collect_modules=r"mlp\.up_proj", layers="0,3")
    assert forward._shared_prompt_plan(model, model.config, batch, observing_hooks=True) is not None
    shared = m.loss_inputs(model, batch)
    real = hidden.forward_pairs
    hidden.forward_pairs = lambda model, batch, **kw: real(
        model, batch, output_hidden_states=True, stats=kw.get("stats", ())
    )
    try:
        plain = m.loss_inputs(model, dataclasses.replace(batch, completion_mask=batch.completion_mask.clone()))
    finally:
        hidden.forward_pairs = real
    for k in shared.hidden.layers:
        for a, b in zip(shared.hidden.pooled[k], plain.hidden.pooled[k]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_cached_reference_equals_live_and_the_key_follows_the_pattern(setup):
    model, tok, items, batch = setup
    kw = dict(
        collect="modules",
        collect_modules=r".*\.k_proj",
        use_policy_weights=True,
        use_mallows=True,
        norm_before_reduce=True,
    )
    m = method(model, **kw)
    live = m.loss_inputs(model, batch)
    table = ref_cache.compute_reference(model, items, tok.pad_token_id, 3, m.reference_rows)
    assert {"chosen_entropy", "rejected_entropy"} <= set(table)  # Mallows reads the reference's entropies
    m.use_reference_table(table)
    cached = m.loss_inputs(model, batch)
    for k in live.hidden.layers:
        for a, b in zip(live.hidden.pooled[k], cached.hidden.pooled[k]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for side in ("ref_chosen", "ref_rejected"):
        torch.testing.assert_close(getattr(live, side).entropy, getattr(cached, side).entropy, rtol=1e-5, atol=1e-6)
    out_live, out_cached = m.loss(live), m.loss(cached)  # the same weights either way
    for name in ("weights/policy", "weights/mallows"):
        torch.testing.assert_close(out_live.metrics[name], out_cached.metrics[name], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out_live.loss, out_cached.loss, rtol=1e-5, atol=1e-6)
    key = m.reference_settings()
    other = method(model, **{**kw, "collect_modules": r".*\.(k|v)_proj"}).reference_settings()
    assert key["collect_modules"] == r".*\.k_proj" and key != other
    assert "collect_modules" not in method(model).reference_settings()  # hs keys stay as they were
    assert key["reference_stats"] == ["entropy"] and key["norm_before_reduce"] == 2.0


def test_norm_before_reduce_pools_unit_tokens(setup):
    model, tok, items, batch = setup
    m = method(model, norm_before_reduce=True, layers="2")
    inputs = m.loss_inputs(model, batch)
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
    h = out.hidden_states[3]
    h = h / (h.norm(dim=-1, keepdim=True) + 1e-6)
    mask = batch.completion_mask.unsqueeze(-1).float()
    expected = (h * mask).sum(1) / mask.sum(1)
    torch.testing.assert_close(
        inputs.hidden.pooled["2"].policy_chosen, expected[: batch.num_pairs], rtol=1e-5, atol=1e-5
    )
    assert float(inputs.hidden.pooled["2"].policy_chosen.detach().norm(dim=-1).max()) <= 1.0 + 1e-5


def test_live_and_cached_policy_weights_in_output_methods(setup):
    model, tok, items, batch = setup
    m = build_method(MethodConfig(use_policy_weights=True, use_mallows=True))
    live = m.loss(m.loss_inputs(model, batch))
    m.use_reference_table(ref_cache.compute_reference(model, items, tok.pad_token_id, 3, m.reference_rows))
    cached = m.loss(m.loss_inputs(model, batch))
    for name in ("weights/policy", "weights/mallows"):
        torch.testing.assert_close(live.metrics[name], cached.metrics[name], rtol=1e-5, atol=1e-6)
    assert float(live.metrics["weights/policy"]) == pytest.approx(1.0, abs=1e-5)
    assert m.reference_settings() == {"reference_stats": ["entropy"]}
    assert build_method(MethodConfig()).reference_settings() == {}  # plain DPO's cache key is unchanged


def test_wpo_statistic_by_hand_from_the_head(setup):
    """SeqLogps.wpo = Σ_t log π(y_t) − log Σ_v π(v)², checked against a full softmax."""
    from innerpo.models.forward import forward_pairs

    model, tok, items, batch = setup
    out = forward_pairs(model, batch, stats=("wpo", "entropy"))
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1].float()
    logp = torch.log_softmax(logits, -1)
    pred = batch.completion_mask[:, 1:].bool()
    tgt = logp.gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
    w = tgt - torch.logsumexp(2 * logp, -1)
    ent = -(logp.exp() * logp).sum(-1) / torch.log(torch.tensor(float(logits.shape[-1])))
    b = batch.num_pairs
    torch.testing.assert_close(out.chosen.wpo, (w * pred).sum(1)[:b], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.rejected.entropy, (ent * pred).sum(1)[b:], rtol=1e-4, atol=1e-4)


def test_an_unmatched_pattern_names_what_exists(setup):
    model, tok, items, batch = setup
    with pytest.raises(ValueError, match=r"'.*nope' matches no linear module.*self_attn\.q_proj"):
        method(model, collect="modules", collect_modules=".*nope")
    from innerpo.methods.hidden import check_module_pattern

    with pytest.raises(ValueError, match=r"block 1: .*matches no linear module.*mlp\.up_proj"):
        check_module_pattern(ModelConfig(base_model="tiny-random"), [1], "attn")
    check_module_pattern(ModelConfig(base_model="tiny-random"), [0, 3], r"self_attn\.o_proj")
    with pytest.raises(ValueError, match="not a regular expression"):
        check_module_pattern(ModelConfig(base_model="tiny-random"), [0], "(")


def test_collect_modules_is_read_only_with_modules():
    from innerpo.errors import ConfigError

    with pytest.raises(ConfigError, match=r"collect_modules.*with --method.collect=modules"):
        build_method(MethodConfig(hidden_loss="innerpo", collect_modules=r".*\.q_proj"))
    with pytest.raises(ConfigError, match="collect"):  # projections train output losses only: no collection
        build_method(MethodConfig(projection="projbp", collect="modules"))
