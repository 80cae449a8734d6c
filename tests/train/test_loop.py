"""The training loop on tiny-random: accumulation averaging, non-finite stop, run directory."""

import json

import pytest
import torch

from innerpo.data.batching import collate
from innerpo.data.config import DataConfig
from innerpo.data.sources import load_pairs
from innerpo.data.tokenize import PairTokenizer
from innerpo.eval.config import EvalConfig
from innerpo.losses.dpo import DPOLoss
from innerpo.methods.build import build_method
from innerpo.models.config import ModelConfig
from innerpo.models.load import add_lora, load_base
from innerpo.train import loop
from innerpo.train.config import TrainConfig, TrainingConfig
from innerpo.train.metrics import StepMetrics


def write_pairs(path, n=12):
    rows = [
        {"prompt": f"What is {i} + 1?", "chosen": str(i + 1), "rejected": str(i + 2) * (1 + i % 3)} for i in range(n)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


def tiny_cfg(tmp_path, **training) -> TrainConfig:
    data = write_pairs(tmp_path / "pairs.jsonl")
    suite = tmp_path / "suite.yaml"
    held_out = tmp_path / "held_out.jsonl"  # periodic evaluation scores held-out pairs only
    held_out.write_text(
        "\n".join(
            json.dumps({"prompt": f"What is {i} + 2?", "chosen": str(i + 2), "rejected": str(i + 3) * 2})
            for i in range(8)
        )
    )
    suite.write_text(f"shifts:\n  in_domain: {{dataset: {held_out}}}\n")
    return TrainConfig(
        model=ModelConfig(base_model="tiny-random", lora_r=4),
        data=DataConfig(dataset=data, batch_size=2, max_length=64),
        training=TrainingConfig(**{"max_steps": 2, "eval_every": 0, "seed": 3, **training}),
        eval=EvalConfig(suite=str(suite), max_pairs=8),
        output_dir=str(tmp_path / "run"),
    )


def test_step_metrics_are_pair_weighted_means():
    m = StepMetrics()
    m.add({"loss": torch.tensor(1.0)}, num_pairs=2)
    m.add({"loss": torch.tensor(4.0)}, num_pairs=1)
    assert m.means() == {"loss": pytest.approx(2.0)}


def test_logged_metrics_average_the_whole_accumulation_window(tmp_path):
    cfg = tiny_cfg(tmp_path, max_steps=1, grad_accum=3, lr=0.0, warmup_ratio=0.0)
    run = loop.train(cfg, evaluate=False)
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])

    # Recompute each micro-batch's DPO loss with the same data order and adapter init.
    base, tok = load_base(cfg.model)
    model = add_lora(base, cfg.model, cfg.training.seed)
    pairs = load_pairs(cfg.data.dataset)
    import random

    random.Random(cfg.training.seed).shuffle(pairs)
    items = PairTokenizer(tok, 64).tokenize_all(pairs, "x")[0]
    method = build_method(cfg.method)
    # Perturb nothing: with lr=0 the adapter is its init; B=0 makes policy == reference,
    # so compare a quantity that differs per batch: the chosen log-probs.
    per_batch = []
    for idx in list(loop.make_loader(items, cfg, tok.pad_token_id).batch_sampler)[:3]:
        batch = collate([items[i] for i in idx], tok.pad_token_id)
        with torch.no_grad():
            out = method.loss(method.loss_inputs(model, batch))
        per_batch.append(out.metrics["logps/chosen"].item())
    assert row["logps/chosen"] == pytest.approx(sum(per_batch) / 3, rel=1e-4)
    assert row["logps/chosen"] != pytest.approx(per_batch[-1], rel=1e-4)


def test_non_finite_loss_stops_and_keeps_last_good_adapter(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = DPOLoss.forward

    def flaky(self, x):
        calls["n"] += 1
        out = real(self, x)
        if calls["n"] == 3:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(DPOLoss, "forward", flaky)
    cfg = tiny_cfg(tmp_path, max_steps=5)
    with pytest.raises(
        loop.NonFiniteLossError, match=r"loss is nan at optimizer step 3, micro-batch 1/1.*after step 2"
    ):
        loop.train(cfg)
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2


def test_bad_hyperparameters_fail_before_any_output(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.method.beta = -1.0
    with pytest.raises(ValueError, match="beta must be a positive"):
        loop.train(cfg)
    assert not (tmp_path / "run").exists()


def test_refuses_to_overwrite_a_finished_run(tmp_path):
    loop.train(tiny_cfg(tmp_path, max_steps=1), evaluate=False)
    from innerpo.errors import ConfigError

    with pytest.raises(ConfigError, match="already holds a trained adapter"):  # refused by validation, before any write
        loop.train(tiny_cfg(tmp_path, max_steps=1), evaluate=False)


def test_second_run_reuses_the_reference_cache(tmp_path, monkeypatch):
    from innerpo.models import ref_cache

    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    passes = []
    real = ref_cache.compute_reference
    monkeypatch.setattr(ref_cache, "compute_reference", lambda *a: passes.append(1) or real(*a))
    first = tiny_cfg(tmp_path, max_steps=1)
    loop.train(first, evaluate=False)
    assert passes == [1]
    second = tiny_cfg(tmp_path, max_steps=2, seed=9)  # another seed: same pairs, same reference
    second.output_dir = str(tmp_path / "run2")
    loop.train(second, evaluate=False)
    assert passes == [1]
    third = tiny_cfg(tmp_path, max_steps=1)
    third.data.max_length = 48  # changes the tokenization settings, hence the key
    third.output_dir = str(tmp_path / "run3")
    loop.train(third, evaluate=False)
    assert passes == [1, 1]
