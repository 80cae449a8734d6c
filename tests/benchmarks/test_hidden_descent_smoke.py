"""benchmarks/hidden_descent.py runs end to end and prints its table (tiny-random, 2 steps)."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "hidden_descent.py"


def test_hidden_descent_prints_one_row_per_term(tmp_path):
    env = {**os.environ, "INNERPO_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--model",
        "tiny-random",
        "--steps",
        "2",
        "--batch",
        "2",
        "--lr",
        "1e-3",
        "--only",
        "hs-none-prefvec",
        "hs-none-mse",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| hs-")]
    assert [r.split("|")[1].strip() for r in rows] == ["hs-none-prefvec", "hs-none-mse"]
    assert "prefvec/proj (up)" in rows[0] and "hidden/para_ratio (down)" in rows[1]
