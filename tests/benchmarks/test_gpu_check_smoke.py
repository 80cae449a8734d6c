"""benchmarks/gpu_check.py runs end to end on CPU with tiny shapes and prints its table and targets."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_with_tiny_random():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", "tiny-random", "--steps", "1", "--length", "48", "--long", "64"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for needle in ("innerpo dpo", "trl precompute", "innerpo innerdpo", "packed eval", "generation", "target "):
        assert needle in out.stdout, out.stdout
    assert "target PASS" in out.stdout or "target FAIL" in out.stdout


def test_gpu_check_parses_and_builds_the_1b_config():
    sys.path.insert(0, str(SCRIPT.parent))
    import gpu_check

    cfg = gpu_check.llama_1b_config(128256, 0, 1)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.intermediate_size) == (
        2048,
        16,
        8,
        8192,
    )
    assert len(gpu_check.text_pairs(3, 10, 20)) == 3
