"""SIGKILL and resume on the bundled SmolLM2-135M-Instruct (marked slow): the resumed run
ends with the uninterrupted run's adapter (1e-6) and metrics rows."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from innerpo.cli import main

pytestmark = pytest.mark.slow

SLOW_STEPS = """
import sys, time
import innerpo.train.loop as loop
step = loop.optimizer_step
def slow(*args, **kwargs):
    time.sleep(1.0)
    return step(*args, **kwargs)
loop.optimizer_step = slow
from innerpo.cli import main
main(sys.argv[1:])
"""


def args(tmp_path, out):
    suite = tmp_path / "suite.yaml"
    suite.write_text("shifts:\n  in_domain: {dataset: 'synthetic:in_domain', split: test}\n")
    return [
        "train",
        "dpo",
        "--data.max_train_pairs=24",
        "--data.batch_size=4",
        "--model.lora_dropout=0.05",
        "--training.max_steps=5",
        "--training.save_every=2",
        "--training.eval_every=0",
        f"--eval.suite={suite}",
        "--eval.max_pairs=8",
        f"--output_dir={out}",
    ]


def rows(run):
    return [
        {k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def test_sigkill_and_resume_on_the_bundled_model(tmp_path):
    main(args(tmp_path, tmp_path / "a"))
    b = tmp_path / "b"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_STEPS, *args(tmp_path, b)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t = time.time()
    while not ((b / "metrics.jsonl").exists() and any(r["step"] >= 3 for r in rows(b))):
        assert proc.poll() is None and time.time() - t < 300, "the run to be killed ended or stalled"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # after checkpoint step-2 and step 3's row
    proc.wait()
    main(["train", "--resume", str(b)])
    assert rows(b) == rows(tmp_path / "a")
    wa, wb = (load_file(str(r / "adapter" / "adapter_model.safetensors")) for r in (tmp_path / "a", b))
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) <= 1e-6
