"""WPO and Mallows weights through the training loop on tiny-random: logged as the mean
over the accumulation window, identical with the reference cache on and off."""

import json
import random

import pytest
import torch

from innerpo.data.batching import collate
from innerpo.data.sources import load_pairs
from innerpo.data.tokenize import PairTokenizer
from innerpo.methods.build import build_method
from innerpo.methods.config import MethodConfig
from innerpo.models.load import add_lora, load_base
from innerpo.train import loop

from .test_loop import tiny_cfg


def test_weights_are_window_means_and_equal_with_and_without_the_reference_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    rows = {}
    for cache in (True, False):
        cfg = tiny_cfg(tmp_path, max_steps=1, grad_accum=3, lr=0.0, warmup_ratio=0.0, ref_cache=cache)
        cfg.method = MethodConfig(use_policy_weights=True, use_mallows=True)
        cfg.output_dir = str(tmp_path / f"run-{cache}")
        run = loop.train(cfg, evaluate=False)
        rows[cache] = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    for name in ("loss", "weights/policy", "weights/mallows"):
        assert rows[True][name] == pytest.approx(rows[False][name], rel=1e-5), name
    assert rows[True]["weights/policy"] == pytest.approx(1.0, abs=1e-5)  # normalised per micro-batch

    # each micro-batch's φ, recomputed with the same data order: the logged value is their mean
    base, tok = load_base(cfg.model)
    model = add_lora(base, cfg.model, cfg.training.seed)
    pairs = load_pairs(cfg.data.dataset)
    random.Random(cfg.training.seed).shuffle(pairs)
    items = PairTokenizer(tok, 64).tokenize_all(pairs, "x")[0]
    method = build_method(cfg.method)
    per_batch = []
    for idx in list(loop.make_loader(items, cfg, tok.pad_token_id).batch_sampler)[:3]:
        with torch.no_grad():
            out = method.loss(method.loss_inputs(model, collate([items[i] for i in idx], tok.pad_token_id)))
        per_batch.append(out.metrics["weights/mallows"].item())
    assert rows[True]["weights/mallows"] == pytest.approx(sum(per_batch) / 3, rel=1e-4)
    assert len(set(round(v, 6) for v in per_batch)) > 1  # the batches differ, so the mean is a real average
