"""The long-shift evaluation benchmark runs end to end on tiny-random (not a timing test):
before and after give the same accuracies, and the section prints the GEMM floor."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "vs_trl.py"


def test_long_shift_evaluation_runs_and_before_after_agree(tmp_path, shared_genies):
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--model",
        "tiny-random",
        "--data",
        "synthetic",
        "--configs",
        "eval_long,eval_long_bf16",
        "--eval-pairs",
        "12",
        "--eval-rounds",
        "1",
        "--genies-dir",
        shared_genies,
        "--log-dir",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert re.search(r"long-shift evaluation \(\d+ pairs, \d+ real tokens per pair", out), out[-3000:]
    assert "largest accuracy difference before/after 0.0000" in out, out[-3000:]
    assert re.search(r"GEMM floor of the scoring pass \(\d+\.\d GFLOP per pair\): fp32 \d+\.\d\d pairs/s", out), out[
        -3000:
    ]
    assert re.search(r"by CPU seconds .*: before \d+\.\d\d pairs/s, after \d+\.\d\d pairs/s, \d+\.\d\dx", out), out[
        -3000:
    ]
    assert "long-shift evaluation fp32 >= 2x the previous pass's pairs/s" in out
    assert "long-shift evaluation bf16 more than fp32's gain" in out
