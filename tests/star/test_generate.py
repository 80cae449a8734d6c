"""HFGenerator against transformers' own greedy `generate`, prompt by prompt; its sampler,
KV cache and shared-prefix attention against known answers."""

from types import SimpleNamespace

import pytest
import torch
from transformers import DynamicCache

from innerpo.models import tiny
from innerpo.star.generate import GenSettings, HFGenerator, sample_tokens
from innerpo.star.kv_cache import PreallocatedCache
from innerpo.star.prefix_attention import decoder_mask, shared_prefix_attention_forward


def _prompts(tok):
    prefix = "<|im_start|>system\nAdd the numbers.<|im_end|>\n<|im_start|>user\n"
    texts = [
        prefix + q + "<|im_end|>\n<|im_start|>assistant\n" for q in ("What is 1 + 2?", "What is 13 + 25, please?", "Hi")
    ]
    return [tok(t, add_special_tokens=False)["input_ids"] for t in texts]


def _reference(model, tok, ids, n):
    out = model.generate(
        torch.tensor([ids]),
        max_new_tokens=n,
        do_sample=False,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    new = out[0, len(ids) :].tolist()
    if tok.eos_token_id in new:
        new = new[: new.index(tok.eos_token_id)]
    return tok.decode(new, skip_special_tokens=True)


def test_greedy_equals_per_prompt_generate_with_shared_prefix_and_padding():
    model, tok = tiny.build(seed=1)
    model.eval()
    prompts = _prompts(tok)
    gen = HFGenerator(model, tok)
    # a tiny token budget forces one prompt per batch; a large one puts all three together
    for budget in (10_000, 1):
        for share in (True, False):  # the prefix attended once, or copied into each row
            out = gen.generate(
                prompts, 1, GenSettings(max_new_tokens=12, temperature=0.0, batch_tokens=budget, share_prefix=share)
            )
            for ids, (sample,) in zip(prompts, out):
                assert sample.text == _reference(model, tok, ids, 12)
                assert sample.finish in ("eos", "length") and 0 < sample.n_tokens <= 12


def test_greedy_equals_generate_without_a_shared_prefix():
    model, tok = tiny.build(seed=1)
    prompts = [
        tok(t, add_special_tokens=False)["input_ids"] for t in ("What is 1 + 2?", "Hi", "Tell me 13 + 25, please.")
    ]
    gen = HFGenerator(model, tok)
    assert gen._prefix(prompts) == (0, None)  # left-padded rows, no prefix row to share
    out = gen.generate(prompts, 1, GenSettings(max_new_tokens=12, temperature=0.0))
    assert [s.text for (s,) in out] == [_reference(model, tok, ids, 12) for ids in prompts]


def test_k_samples_share_the_prompt_and_are_reproducible():
    model, tok = tiny.build(seed=1)
    prompts = _prompts(tok)
    gen = HFGenerator(model, tok)
    # top_p ~ 0 keeps only the most likely token: every sample of a prompt is its greedy text
    narrow = gen.generate(prompts, 3, GenSettings(max_new_tokens=10, temperature=1.0, top_p=1e-9))
    greedy = gen.generate(prompts, 1, GenSettings(max_new_tokens=10, temperature=0.0))
    for samples, (g,) in zip(narrow, greedy):
        assert len(samples) == 3 and all(s.text == g.text for s in samples)
    a = gen.generate(prompts, 4, GenSettings(max_new_tokens=10, temperature=1.0, seed=5))
    b = gen.generate(prompts, 4, GenSettings(max_new_tokens=10, temperature=1.0, seed=5))
    assert [[s.text for s in x] for x in a] == [[s.text for s in x] for x in b]
    assert len({s.text for x in a for s in x}) > 3  # sampling does vary


def test_stop_strings_cut_the_text():
    model, tok = tiny.build(seed=1)
    gen = HFGenerator(model, tok)
    assert gen._text(tok("abc\nQ: next", add_special_tokens=False)["input_ids"], ("\nQ:",)) == "abc"
    assert gen._hits_stop(tok("xx\nQ:", add_special_tokens=False)["input_ids"], ("\nQ:",))


def test_batches_respect_token_and_row_caps():
    prompts = [[1] * n for n in (5, 50, 7, 30)]
    batches = HFGenerator.batches(prompts, 2, GenSettings(max_new_tokens=10, batch_tokens=200, max_rows=4))
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]
    for b in batches:
        assert len(b) * 2 <= 4 or len(b) == 1
        assert len(b) == 1 or len(b) * 2 * (max(len(prompts[i]) for i in b) + 10) <= 200


def test_inverse_cdf_sampling_matches_the_distribution_and_is_seeded():
    # p = (0.1, 0.2, 0.3, 0.4, 0): over n = 40_000 draws a frequency's standard error is at
    # most sqrt(0.25 / n) = 0.0025; 0.012 is ~5 of them; the zero-probability token never comes
    p = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.0])
    logits = p.log().expand(40_000, -1)
    draws = sample_tokens(logits, 1.0, 1.0, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=5).double() / len(draws)
    assert torch.allclose(freq, p.double(), atol=0.012) and freq[4] == 0
    # temperature 0.5 squares the probabilities: (1, 4, 9, 16) / 30
    freq = torch.bincount(
        sample_tokens(logits, 0.5, 1.0, torch.Generator().manual_seed(1)), minlength=5
    ).double() / len(draws)
    assert torch.allclose(freq, torch.tensor([1, 4, 9, 16, 0]).double() / 30, atol=0.012)
    # top_p 0.5: the nucleus is the two most likely tokens (0.4 + 0.3 first reaches 0.5), renormalized
    freq = torch.bincount(
        sample_tokens(logits, 1.0, 0.5, torch.Generator().manual_seed(2)), minlength=5
    ).double() / len(draws)
    assert torch.allclose(freq, torch.tensor([0, 0, 3 / 7, 4 / 7, 0]).double(), atol=0.012)
    # a nucleus wider than the topk candidates falls back to a full sort: top_p 0.8 needs 3 tokens
    freq = torch.bincount(
        sample_tokens(logits, 1.0, 0.8, torch.Generator().manual_seed(3), candidates=2), minlength=5
    ).double() / len(draws)
    assert torch.allclose(freq, torch.tensor([0, 2 / 9, 3 / 9, 4 / 9, 0]).double(), atol=0.012)
    # and the candidates give the very draws of the full sort when they hold the nucleus
    top2, full = (sample_tokens(logits[:500], 1.0, 0.5, torch.Generator().manual_seed(4), candidates=c) for c in (2, 1))
    assert torch.equal(top2, full)
    # a seed reproduces, another seed does not; temperature 0 is the argmax
    a, b, c = (sample_tokens(logits[:200], 1.0, 1.0, torch.Generator().manual_seed(s)) for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert sample_tokens(torch.tensor([[0.0, 2.0, 1.0]]), 0.0, 1.0, torch.Generator()).tolist() == [1]


def test_preallocated_cache_writes_in_place_and_drops_rows():
    cache = PreallocatedCache(capacity=6)
    k = torch.arange(2 * 1 * 3 * 2, dtype=torch.float).view(2, 1, 3, 2)  # [rows, heads, positions, dim]
    keys, _ = cache.update(k, -k, 0)
    buffer = cache.layers[0]._k
    step = torch.full((2, 1, 1, 2), 9.0)
    keys, values = cache.update(step, -step, 0)
    assert cache.layers[0]._k is buffer and keys.data_ptr() == buffer.data_ptr()  # written in place, a view back
    assert torch.equal(keys, torch.cat([k, step], dim=2)) and torch.equal(values, -keys) and cache.get_seq_length() == 4
    cache.batch_repeat_interleave(2)  # rows 0 0 1 1
    cache.batch_select_indices(torch.tensor([3, 0]))  # rows 1 0
    assert torch.equal(cache.layers[0].keys, torch.cat([k, step], dim=2)[[1, 0]])
    with pytest.raises(ValueError, match="capacity"):
        cache.update(torch.zeros(2, 1, 3, 2), torch.zeros(2, 1, 3, 2), 0)


def test_shared_prefix_attention_equals_attention_over_the_copied_prefix():
    torch.manual_seed(0)
    rows, kv_heads, group, q, n_prefix, n_own, d = 3, 2, 3, 4, 5, 6, 8
    query = torch.randn(rows, kv_heads * group, q, d)
    pk, pv = torch.randn(1, kv_heads, n_prefix, d), torch.randn(1, kv_heads, n_prefix, d)
    key, value = torch.randn(rows, kv_heads, n_own, d), torch.randn(rows, kv_heads, n_own, d)
    pad = torch.ones(rows, n_own, dtype=torch.long)
    pad[0, :2] = 0  # row 0 is left-padded
    prefix = DynamicCache()
    prefix.update(pk, pv, 0)
    module = SimpleNamespace(layer_idx=0, num_key_value_groups=group)
    out, _ = shared_prefix_attention_forward(module, query, key, value, decoder_mask(pad, q), shared_prefix=prefix)
    # reference: the prefix copied into every row, one mask over both, plain SDPA
    full_k = torch.cat([pk.expand(rows, -1, -1, -1), key], dim=2).repeat_interleave(group, dim=1)
    full_v = torch.cat([pv.expand(rows, -1, -1, -1), value], dim=2).repeat_interleave(group, dim=1)
    mask = decoder_mask(torch.cat([torch.ones(rows, n_prefix, dtype=torch.long), pad], dim=1), q)
    ref = torch.nn.functional.scaled_dot_product_attention(query, full_k, full_v, attn_mask=mask).transpose(1, 2)
    assert out.shape == (rows, q, kv_heads * group, d) and torch.allclose(out, ref, atol=1e-5)


def test_sampling_with_and_without_the_shared_prefix_agree_and_attention_is_restored():
    model, tok = tiny.build(seed=1)
    prompts = _prompts(tok)
    gen = HFGenerator(model, tok)
    a, b = (
        gen.generate(prompts, 3, GenSettings(max_new_tokens=10, temperature=1.0, seed=3, share_prefix=s))
        for s in (True, False)
    )
    assert [[s.text for s in x] for x in a] == [[s.text for s in x] for x in b]
    assert model.config._attn_implementation == "sdpa"
