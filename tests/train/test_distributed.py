"""Two CPU processes (gloo) train like one process with the same global batch."""

import json

import pytest
from safetensors.torch import load_file

from innerpo.cli import main
from innerpo.train.checkpoint import checkpoint_dirs, problem

from .runs import held_out_run_args, launched_run


def run_args(tmp_path, out, *extra):
    return held_out_run_args(
        tmp_path,
        out,
        12,
        "--data.batch_size=4",
        "--training.grad_accum=2",
        "--training.max_steps=4",
        "--training.lr=1e-3",
        "--training.save_every=2",
        *extra,
    )


def test_two_gloo_processes_match_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    main(run_args(tmp_path, tmp_path / "one"))
    proc = launched_run(tmp_path, run_args(tmp_path, tmp_path / "two", "--num_processes", "2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "data parallel: 2 processes (MULTI_CPU), each 2 of every 4 pairs" in proc.stdout + proc.stderr

    one, two = (tmp_path / "one" / "metrics.jsonl"), (tmp_path / "two" / "metrics.jsonl")
    rows1, rows2 = ([json.loads(line) for line in p.read_text().splitlines()] for p in (one, two))
    assert [r["step"] for r in rows2] == [r["step"] for r in rows1]  # one writer: no duplicated rows
    for r1, r2 in zip(rows1, rows2):
        # every metric is the mean over both processes' shards; padding differs (each shard pads to its own longest)
        keys = set(r1) - {"elapsed_s", "padding_share"}
        assert set(r2) - {"elapsed_s", "padding_share"} == keys
        assert {k: r2[k] for k in keys} == pytest.approx({k: r1[k] for k in keys}, rel=1e-5, abs=1e-6)
    w1 = load_file(str(tmp_path / "one" / "adapter" / "adapter_model.safetensors"))
    w2 = load_file(str(tmp_path / "two" / "adapter" / "adapter_model.safetensors"))
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-5
    # checkpoints hold each process's RNG states, written once, complete
    last = checkpoint_dirs(tmp_path / "two")[-1]
    assert problem(last) is None and {p.name for p in last.glob("random_states_*")} == {
        "random_states_0.pkl",
        "random_states_1.pkl",
    }
    # the same reference tables as one process (built by the main process, read by the other)
    names = {p.name for p in (tmp_path / "cache" / "reference").glob("*.safetensors")}
    assert {p.name for p in (tmp_path / "cache2" / "reference").glob("*.safetensors")} == names


@pytest.mark.parametrize("flag", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_sharded_backends_are_refused_before_any_output(tmp_path, monkeypatch, flag):
    monkeypatch.setenv(flag, "true")
    with pytest.raises(ValueError, match="is not supported by innerpo's loop"):
        main(run_args(tmp_path, tmp_path / "run"))
    assert not (tmp_path / "run").exists()
