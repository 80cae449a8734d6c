import torch

from innerpo.data.batching import collate
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import PairTokenizer
from innerpo.methods.build import build_method
from innerpo.methods.config import MethodConfig
from innerpo.models import ref_cache
from innerpo.models.forward import forward_pairs

ROWS = build_method(MethodConfig()).reference_rows


def items_for(tok, n=5, max_length=64):
    pairs = [Pair(f"q{i}?", "yes" * (i + 1), "no") for i in range(n)]
    return PairTokenizer(tok, max_length).tokenize_all(pairs, "t")[0]


def test_cached_values_equal_in_batch_reference(tiny_model, tmp_path):
    model, tok = tiny_model
    items = items_for(tok)
    table, hit = ref_cache.reference_table(model, items, tok.pad_token_id, 2, {"max_length": 64}, ROWS, root=tmp_path)
    assert not hit
    out = forward_pairs(model, collate(items, tok.pad_token_id))
    torch.testing.assert_close(table["chosen_sum"], out.chosen.sum.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(table["rejected_ntok"], out.rejected.ntok)
    again, hit = ref_cache.reference_table(
        model, items[::-1], tok.pad_token_id, 2, {"max_length": 64}, ROWS, root=tmp_path
    )
    assert hit and torch.equal(again["chosen_sum"], table["chosen_sum"].flip(0))  # rows follow the caller's order


def test_key_changes_with_settings_data_and_weights(tiny_model):
    model, tok = tiny_model
    items = items_for(tok)
    w = ref_cache.weights_fingerprint(model)
    d = ref_cache.item_digests(items)
    base = ref_cache.cache_key(w, d, {"max_length": 64, "layers": [1]})
    assert ref_cache.cache_key(w, d, {"max_length": 32, "layers": [1]}) != base
    assert ref_cache.cache_key(w, d, {"max_length": 64, "layers": [2]}) != base
    assert ref_cache.cache_key(w, d[:-1], {"max_length": 64, "layers": [1]}) != base
    assert ref_cache.cache_key(w, d[::-1], {"max_length": 64, "layers": [1]}) == base  # order-free
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    assert ref_cache.weights_fingerprint(model) != w


def test_corrupted_or_partial_file_is_rebuilt(tiny_model, tmp_path, monkeypatch):
    model, tok = tiny_model
    items = items_for(tok)
    table, _ = ref_cache.reference_table(model, items, tok.pad_token_id, 4, {}, ROWS, root=tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF  # flip bits inside the tensor data
    path.write_bytes(bytes(blob))
    calls = []
    real = ref_cache.compute_reference
    monkeypatch.setattr(ref_cache, "compute_reference", lambda *a: calls.append(1) or real(*a))
    rebuilt, hit = ref_cache.reference_table(model, items, tok.pad_token_id, 4, {}, ROWS, root=tmp_path)
    assert not hit and calls == [1] and torch.equal(rebuilt["chosen_sum"], table["chosen_sum"])
    path.write_bytes(path.read_bytes()[:40])  # truncated
    _, hit = ref_cache.reference_table(model, items, tok.pad_token_id, 4, {}, ROWS, root=tmp_path)
    assert not hit and calls == [1, 1]
    _, hit = ref_cache.reference_table(model, items, tok.pad_token_id, 4, {}, ROWS, root=tmp_path)
    assert hit and calls == [1, 1]
