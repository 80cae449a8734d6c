"""The logged learning rate is the one each step used; schedules; warmup in steps; skipping the step-0 evaluation."""

import json
import math

import pytest
from safetensors.torch import load_file

from innerpo.data.config import DataConfig
from innerpo.eval.config import EvalConfig
from innerpo.methods.config import MethodConfig
from innerpo.models.config import ModelConfig
from innerpo.train import loop
from innerpo.train.config import TrainConfig, TrainingConfig


def tiny_cfg(tmp_path, **training) -> TrainConfig:
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"prompt": f"What is {i} + 1?", "chosen": str(i + 1), "rejected": str(i + 2) * (1 + i % 3)})
            for i in range(12)
        )
    )
    held_out = tmp_path / "held_out.jsonl"  # periodic evaluation scores held-out pairs only
    held_out.write_text(
        "\n".join(
            json.dumps({"prompt": f"What is {i} + 2?", "chosen": str(i + 2), "rejected": str(i + 3) * 2})
            for i in range(8)
        )
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"shifts:\n  in_domain: {{dataset: {held_out}}}\n")
    return TrainConfig(
        model=ModelConfig(base_model="tiny-random", lora_r=4),
        data=DataConfig(dataset=str(data), batch_size=2, max_length=64),
        training=TrainingConfig(**{"max_steps": 4, "eval_every": 0, "seed": 3, "lr": 1e-3, **training}),
        eval=EvalConfig(suite=str(suite), max_pairs=4),
        output_dir=str(tmp_path / "run"),
    )


def logged(run, key):
    return [r[key] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if key in r]


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        # cosine, no warmup: lr·½(1 + cos(π·k/4)) for k = 0..3; step 1 trains at the peak, the last step above 0
        (
            {"warmup_ratio": 0.0},
            [1e-3, 1e-3 * (1 + math.cos(math.pi / 4)) / 2, 0.5e-3, 1e-3 * (1 + math.cos(3 * math.pi / 4)) / 2],
        ),
        # two warmup steps (warmup_steps wins over the ratio): k/2 of the peak, then constant
        ({"schedule": "constant_with_warmup", "warmup_steps": 2, "warmup_ratio": 0.5}, [0.0, 0.5e-3, 1e-3, 1e-3]),
        # linear decay after one warmup step: 0, then (4 − k)/3 of the peak
        ({"schedule": "linear", "warmup_steps": 1}, [0.0, 1e-3, 2e-3 / 3, 1e-3 / 3]),
    ],
)
def test_logged_lr_is_the_rate_each_step_used(tmp_path, training, expected):
    run = loop.train(tiny_cfg(tmp_path, **training), evaluate=False)
    assert logged(run, "lr") == pytest.approx(expected, abs=1e-12)


def test_a_zero_rate_step_leaves_the_adapter_unchanged(tmp_path):
    """The logged 0.0 is true: a warmup step at rate 0 does not move the weights (AdamW, no decay)."""
    cfg = tiny_cfg(tmp_path, max_steps=1, schedule="constant_with_warmup", warmup_steps=1)
    run = loop.train(cfg, evaluate=False)
    from peft import get_peft_model_state_dict

    from innerpo.models.load import add_lora, load_base

    init = get_peft_model_state_dict(add_lora(load_base(cfg.model)[0], cfg.model, cfg.training.seed))
    trained = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    assert trained.keys() == init.keys()
    assert all(trained[k].equal(init[k]) for k in init)


def test_skip_first_eval(tmp_path):
    run = loop.train(tiny_cfg(tmp_path, eval_every=2, eval_pairs=4), evaluate=False)
    assert [
        r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval/accuracy" in r
    ] == [0, 2, 4]
    cfg = tiny_cfg(tmp_path, eval_every=2, eval_pairs=4, skip_first_eval=True)
    cfg.output_dir = str(tmp_path / "skip")
    run = loop.train(cfg, evaluate=False)
    assert [
        r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval/accuracy" in r
    ] == [2, 4]


def test_trainable_method_parameters_are_saved_and_restored(tmp_path):
    """ETHER+ transforms train with the adapter: the run and each checkpoint keep them."""
    from innerpo.methods.build import build_method
    from innerpo.models.load import add_lora, load_base
    from innerpo.train.run_dir import load_method_params, method_params

    cfg = tiny_cfg(tmp_path, save_every=2, max_steps=2)
    cfg.method = MethodConfig(hidden_loss="innerpo", transform="etherplus", layers="1,2")
    run = loop.train(cfg, evaluate=False)
    final = load_file(str(run / "method.safetensors"))
    assert final and final.keys() == load_file(str(run / "checkpoints" / "step-2" / "method.safetensors")).keys()
    method = build_method(cfg.method)
    method.bind(add_lora(load_base(cfg.model)[0], cfg.model, 0))
    fresh = method_params(method)
    assert any(not fresh[k].equal(final[k]) for k in final)  # training moved them
    load_method_params(run / "method.safetensors", method)
    assert all(method_params(method)[k].equal(final[k]) for k in final)
