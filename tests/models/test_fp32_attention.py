"""The float32 attention of bf16 runs on CPU (innerpo.models.precision._fp32_sdpa): masked
grouped-query attention reads the shared key/value heads in place (enable_gqa) and gives
what transformers' SDPA path (key/value heads copied per query head) gives."""

import collections
import types

import torch
import torch.nn.functional as F
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from innerpo.models import precision
from innerpo.models.forward import forward_pairs

from .test_precision import batch_for, lora_model


def qkv_mask(b=3, heads=6, kv_heads=2, tq=5, tk=7):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(b, heads, tq, 8, generator=g).bfloat16().requires_grad_()
    k = torch.randn(b, kv_heads, tk, 8, generator=g).bfloat16().requires_grad_()
    v = torch.randn(b, kv_heads, tk, 8, generator=g).bfloat16().requires_grad_()
    mask = torch.ones(b, 1, tq, tk, dtype=torch.bool).tril(tk - tq)  # causal, queries after 2 cached keys
    mask[0, :, :, :2] = False  # row 0: its first two keys are padding
    return q, k, v, mask


def test_masked_gqa_matches_transformers_sdpa_values_and_gradients():
    module = types.SimpleNamespace(num_key_value_groups=3, is_causal=True, training=False)
    q, k, v, mask = qkv_mask()
    out = precision._fp32_sdpa(module, q, k, v, mask, scaling=0.3)[0]  # [B, T, H, Dh]
    go = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad(out, (q, k, v), go)
    ref = sdpa_attention_forward(module, q.float(), k.float(), v.float(), mask, scaling=0.3)[0]
    ref_grads = torch.autograd.grad(ref, (q, k, v), go)
    assert out.dtype == torch.float32 and out.shape == ref.shape == (3, 5, 6, 8)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # and the reference really differs from a wrong pairing of query and key heads
    swapped = precision._fp32_sdpa(module, q, k.flip(1), v.flip(1), mask, scaling=0.3)[0]
    assert not torch.allclose(swapped, ref, atol=1e-3)


def test_bf16_model_forward_takes_the_in_place_gqa_kernel(monkeypatch):
    """tiny-random has 4 query heads on 2 key/value heads; every attention call of a padded
    bf16 batch goes to SDPA with enable_gqa and a mask, and the log-probs are those of
    transformers' repeat_kv path (switched to by registering the old wrapper)."""
    model, tok = lora_model("bf16")
    batch = batch_for(tok)
    calls = collections.Counter()
    sdpa = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls[(kwargs.get("enable_gqa", False), kwargs.get("attn_mask") is not None)] += 1
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    with torch.no_grad():
        new = forward_pairs(model, batch)
    assert calls and set(calls) == {(True, True)}

    def repeat_kv_path(module, query, key, value, attention_mask, **kwargs):
        with torch.autocast("cpu", enabled=False):
            return sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask, **kwargs)

    monkeypatch.setattr(precision, "_fp32_sdpa", repeat_kv_path)
    precision.AttentionInterface.register(precision.FP32_SDPA, repeat_kv_path)
    calls.clear()
    try:
        with torch.no_grad():
            old = forward_pairs(model, batch)
    finally:
        precision.AttentionInterface.register(precision.FP32_SDPA, precision._fp32_sdpa)
    assert set(calls) == {(False, True)}  # transformers' path: heads copied, no enable_gqa
    torch.testing.assert_close(new.chosen.sum, old.chosen.sum, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(new.rejected.sum, old.rejected.sum, rtol=1e-5, atol=1e-4)
