"""The TRL comparison script runs end to end and ends on its summary line (not a timing test).

tiny-random, one timed step, the configurations the summary line needs (TRL with
precomputed reference log-probs, innerpo's DPO in fp32 and bf16, the GEMM floor), each in
its own subprocess.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "vs_trl.py"


def test_vs_trl_runs_and_prints_speedup_last(tmp_path):
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--model",
        "tiny-random",
        "--data",
        "synthetic",
        "--steps",
        "1",
        "--repeats",
        "1",
        "--pairs",
        "16",
        "--configs",
        "trl_precompute,innerpo,innerpo_bf16,roofline",
        "--log-dir",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"speedup_vs_trl=\d+\.\d{3} bf16_over_fp32=\d+\.\d{3} floor_ratio=\d+\.\d{3}", lines[-1]), (
        lines[-1]
    )
    assert any("innerpo bf16 step <= 1.5x its GEMM floor" in line for line in lines), proc.stdout[-3000:]
    assert any("first-step losses equal within 1e-4" in line and "[PASS]" in line for line in lines), proc.stdout[
        -3000:
    ]
