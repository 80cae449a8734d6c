"""Checkpoints and exact resume on tiny-random: a killed run, resumed, ends where the
uninterrupted run ends (adapter to 1e-6, metrics.jsonl rows identical but for wall time)."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from innerpo.cli import main
from innerpo.train.checkpoint import checkpoint_dirs, latest_checkpoint, problem

# 12 pairs in batches of 2, two micro-batches per step: an epoch is 3 steps, so 8 steps
# cross two epoch boundaries (one inside a resumed stretch); dropout uses the torch RNG.
STEPS = 8


def run_args(tmp_path, out, *extra):
    data = tmp_path / "pairs.jsonl"
    if not data.exists():
        pairs = [
            {"prompt": f"What is {i} + 1?", "chosen": str(i + 1), "rejected": str(i + 2) * (1 + i % 3)}
            for i in range(12)
        ]
        data.write_text("\n".join(json.dumps(r) for r in pairs))
    suite = tmp_path / "suite.yaml"
    held_out = tmp_path / "held_out.jsonl"  # periodic evaluation scores held-out pairs only
    held_out.write_text(
        "\n".join(
            json.dumps({"prompt": f"What is {i} + 2?", "chosen": str(i + 2), "rejected": str(i + 3) * 2})
            for i in range(8)
        )
    )
    suite.write_text(f"shifts:\n  in_domain: {{dataset: {held_out}}}\n")
    return [
        "train",
        "dpo",
        "--model.base_model=tiny-random",
        "--model.lora_r=4",
        "--model.lora_dropout=0.1",
        f"--data.dataset={data}",
        "--data.batch_size=2",
        "--data.max_length=64",
        "--training.grad_accum=2",
        f"--training.max_steps={STEPS}",
        "--training.eval_every=3",
        "--training.eval_pairs=4",
        "--training.lr=1e-3",
        "--training.save_every=2",
        f"--eval.suite={suite}",
        "--eval.max_pairs=4",
        f"--output_dir={out}",
        *extra,
    ]


def rows(run):
    """metrics.jsonl without the wall-clock field (it differs between any two runs)."""
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        row.pop("elapsed_s", None)
        out.append(row)
    return out


def assert_same_run(a, b):
    assert rows(b) == rows(a)
    wa, wb = (
        load_file(str(a / "adapter" / "adapter_model.safetensors")),
        load_file(str(b / "adapter" / "adapter_model.safetensors")),
    )
    assert wa.keys() == wb.keys()
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) <= 1e-6


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """The uninterrupted run every test compares against."""
    tmp_path = tmp_path_factory.mktemp("ref")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
        main(run_args(tmp_path, tmp_path / "a"))
    torch.set_num_threads(threads)
    return tmp_path, tmp_path / "a"


def test_checkpoints_hold_everything_and_keep_last_prunes(reference_run, tmp_path, monkeypatch):
    root, a = reference_run
    assert [p.name for p in checkpoint_dirs(a)] == ["step-2", "step-4", "step-6", "step-8"]
    last = checkpoint_dirs(a)[-1]
    assert problem(last) is None
    names = {p.name for p in last.iterdir()}
    assert {
        "adapter",
        "optimizer.bin",
        "scheduler.bin",
        "random_states_0.pkl",
        "trainer_state.json",
        "manifest.json",
    } <= names
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["step"] == STEPS and state["log_bytes"] == (a / "metrics.jsonl").stat().st_size
    assert (state["epoch"], state["position"]) == (2, 4)  # 16 micro-batches of 6 per epoch
    # the checkpoint's adapter is the final adapter
    wa, wc = (
        load_file(str(a / "adapter" / "adapter_model.safetensors")),
        load_file(str(last / "adapter" / "adapter_model.safetensors")),
    )
    assert all(torch.equal(wa[k], wc[k]) for k in wa)

    monkeypatch.setenv("INNERPO_CACHE", str(root / "cache"))
    main(run_args(root, tmp_path / "k", "--training.keep_last=2", "--training.max_steps=6", "--training.eval_every=0"))
    assert [p.name for p in checkpoint_dirs(tmp_path / "k")] == ["step-4", "step-6"]


def _interrupted_copy(a, b, keep: str):
    """b = run a as a process killed after checkpoint `keep` leaves it: later checkpoints,
    the final adapter and results gone, and a row the dead process wrote after `keep`."""
    shutil.copytree(a, b)
    for p in checkpoint_dirs(b):
        if int(p.name.split("-")[1]) > int(keep.split("-")[1]):
            shutil.rmtree(p)
    for name in ("adapter", "summary.json", "results.md"):
        shutil.rmtree(b / name, ignore_errors=True)
        (b / name).unlink(missing_ok=True)
    with (b / "metrics.jsonl").open("a") as f:
        f.write('{"step": 99, "loss": 1.0}\n')
    (b / "config.yaml").write_text((b / "config.yaml").read_text().replace(str(a), str(b)))


def test_resume_ends_like_the_uninterrupted_run(reference_run, monkeypatch):
    root, a = reference_run
    monkeypatch.setenv("INNERPO_CACHE", str(root / "cache"))
    b = root / "b"
    _interrupted_copy(a, b, "step-2")
    main(["train", "--resume", str(b)])
    assert_same_run(a, b)
    first, resumed = json.loads((b / "environment.json").read_text())  # each start is recorded
    assert "resumed_at_step" not in first and resumed["resumed_at_step"] == 2
    assert resumed["packages"]["torch"] == torch.__version__ and resumed["device"] == "cpu"


def test_a_checkpoint_truncated_by_hand_is_skipped_for_the_previous_one(reference_run, monkeypatch):
    root, a = reference_run
    monkeypatch.setenv("INNERPO_CACHE", str(root / "cache"))
    c = root / "c"
    _interrupted_copy(a, c, "step-4")
    opt = c / "checkpoints" / "step-4" / "optimizer.bin"
    opt.write_bytes(opt.read_bytes()[:100])
    with pytest.warns(UserWarning, match=r"skipping checkpoint .*step-4: optimizer.bin is 100 bytes"):
        assert latest_checkpoint(c).name == "step-2"
    with pytest.warns(UserWarning, match="skipping checkpoint"):
        main(["train", "--resume", str(c)])
    assert_same_run(a, c)


SLOW_STEPS = """
import sys, time
import innerpo.train.loop as loop
step = loop.optimizer_step
def slow(*args, **kwargs):
    time.sleep(0.3)
    return step(*args, **kwargs)
loop.optimizer_step = slow
from innerpo.cli import main
main(sys.argv[1:])
"""


def _start_slow(args, env):
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_STEPS, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _wait_for_row(proc, log, step, timeout=120):
    t = time.time()
    while time.time() - t < timeout:
        if log.exists() and any(
            json.loads(line).get("step", -1) >= step and "loss" in json.loads(line)
            for line in log.read_text().splitlines()
        ):
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before step {step}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no step {step} within {timeout} s")


def _env(root):
    import os

    return {
        **os.environ,
        "INNERPO_CACHE": str(root / "cache"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[2]),
    }


def test_sigkill_at_any_step_then_resume_gives_the_same_weights_and_metrics(reference_run, monkeypatch):
    root, a = reference_run
    monkeypatch.setenv("INNERPO_CACHE", str(root / "cache"))
    d = root / "d"
    proc = _start_slow(run_args(root, d), _env(root))
    _wait_for_row(proc, d / "metrics.jsonl", 5)  # checkpoint step-4 written, step 5 logged after it
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (d / "adapter").exists()
    main(["train", "--resume", str(d)])
    assert_same_run(a, d)


def test_sigterm_writes_a_checkpoint_and_exits_then_resume_continues(reference_run, monkeypatch):
    root, a = reference_run
    monkeypatch.setenv("INNERPO_CACHE", str(root / "cache"))
    e = root / "e"
    proc = _start_slow(run_args(root, e, "--training.save_every=0"), _env(root))
    _wait_for_row(proc, e / "metrics.jsonl", 3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "innerpo train --resume" in err
    (saved,) = checkpoint_dirs(e)  # save_every=0: the signal's checkpoint alone
    assert int(saved.name.split("-")[1]) >= 3 and problem(saved) is None
    main(["train", "--resume", str(e)])
    assert rows(e) == rows(a)  # save_every differs, which changes nothing of the result
    assert_same_run(a, e)


def test_resume_refuses_flags_that_change_the_result(reference_run, capsys):
    root, a = reference_run
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(a), "--training.lr=0.5"])
    assert exc.value.code == 2
    assert "final adapter" in capsys.readouterr().err
    f = root / "f"
    _interrupted_copy(a, f, "step-2")
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(f), "--training.lr=0.5", "--training.keep_last=1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--training.lr=0.5 (the run has 0.001)" in err and "keep_last" not in err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(root / "nowhere")])
    assert exc.value.code == 2


def test_resume_auto_starts_fresh_or_continues(reference_run, monkeypatch):
    root, a = reference_run
    monkeypatch.setenv("INNERPO_CACHE", str(root / "cache"))
    g = root / "g"
    _interrupted_copy(a, g, "step-6")
    main(run_args(root, g, "--resume", "auto"))  # the sweep's flags, the run's checkpoint
    assert_same_run(a, g)
    fresh = root / "fresh"
    main(run_args(root, fresh, "--resume=auto", "--training.max_steps=2", "--training.eval_every=0"))
    assert [r["step"] for r in rows(fresh)] == [1, 2]


def test_a_fresh_start_never_mixes_with_an_unfinished_run(reference_run, monkeypatch, capsys):
    root, a = reference_run
    h = root / "h"
    _interrupted_copy(a, h, "step-2")
    with pytest.raises(SystemExit) as exit_:
        main(run_args(root, h))
    assert (
        exit_.value.code == 2
        and f"holds checkpoints of an unfinished run: continue it with --resume {h}" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as exit_:  # a bad setting: one line and exit code 2
        main(run_args(root, root / "i", "--training.keep_last=0"))
    assert exit_.value.code == 2 and "--training.keep_last=0: expected >= 1" in capsys.readouterr().err
    assert not (root / "i").exists()
