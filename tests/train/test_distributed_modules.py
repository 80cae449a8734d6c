"""Module-output collection and pair weights under two CPU processes (gloo): the same
metrics and adapter as one process with the same global batch."""

import json

import pytest
from safetensors.torch import load_file

from innerpo.cli import main

from .runs import held_out_run_args, launched_run

# exp-form WPO: not normalised, so one process and two shards weigh each pair alike (the
# default sigmoid form is normalised over each process's micro-batch; see innerpo.losses.weighting)
METHOD = [
    "--method.collect=modules",
    r"--method.collect_modules=.*\.(q|v)_proj",
    "--method.layers=1,2",
    "--method.use_policy_weights",
    "--method.policy_weight_form=exp",
    "--method.use_mallows",
]


def run_args(tmp_path, out, *extra):
    args = held_out_run_args(
        tmp_path, out, 8, "--data.batch_size=4", "--training.max_steps=2", "--training.lr=1e-3", *METHOD, *extra
    )
    args[1] = "hs-none-innerpo"
    return args


def test_two_processes_collect_modules_and_weigh_pairs_like_one(tmp_path, monkeypatch):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    main(run_args(tmp_path, tmp_path / "one"))
    proc = launched_run(tmp_path, run_args(tmp_path, tmp_path / "two", "--num_processes", "2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows1, rows2 = (
        [json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in ("one", "two")
    )
    train1 = [r for r in rows1 if "loss" in r]
    assert train1 and {
        "weights/policy",
        "weights/mallows",
        "hidden/margin/1.self_attn.q_proj",
        "hidden/margin/2.self_attn.v_proj",
    } <= set(train1[0])
    for r1, r2 in zip(rows1, rows2):
        # the spread of the weights is taken within each process's shard, so it alone differs
        keys = {k for k in r1 if not k.endswith("policy_std")} - {"elapsed_s", "padding_share"}
        assert {k: r2[k] for k in keys} == pytest.approx({k: r1[k] for k in keys}, rel=1e-4, abs=1e-6)
    w1 = load_file(str(tmp_path / "one" / "adapter" / "adapter_model.safetensors"))
    w2 = load_file(str(tmp_path / "two" / "adapter" / "adapter_model.safetensors"))
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-5
