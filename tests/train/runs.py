"""CLI flags for a short tiny-random DPO run whose suite holds held-out pairs, so the
periodic evaluation runs (it scores held-out pairs only)."""

import json
import os
import subprocess
import sys
from pathlib import Path


def held_out_run_args(tmp_path, out, n_train: int, *flags) -> list[str]:
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"prompt": f"What is {i} + 1?", "chosen": str(i + 1), "rejected": str(i + 2) * (1 + i % 3)})
            for i in range(n_train)
        )
    )
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text(
        "\n".join(
            json.dumps({"prompt": f"What is {i} + 2?", "chosen": str(i + 2), "rejected": str(i + 3) * 2})
            for i in range(8)
        )
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"shifts:\n  in_domain: {{dataset: {held_out}}}\n")
    return [
        "train",
        "dpo",
        "--model.base_model=tiny-random",
        "--model.lora_r=4",
        f"--data.dataset={data}",
        "--data.max_length=64",
        "--training.eval_every=2",
        "--training.eval_pairs=4",
        f"--eval.suite={suite}",
        "--eval.max_pairs=4",
        f"--output_dir={out}",
        *flags,
    ]


def launched_run(tmp_path, args: list[str]) -> subprocess.CompletedProcess:
    """`innerpo ARGS` in a fresh interpreter (as `--num_processes` relaunches itself), with
    its own cache under tmp_path and one thread per process."""
    env = {
        **os.environ,
        "INNERPO_CACHE": str(tmp_path / "cache2"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).parents[2] / "src"),
    }
    return subprocess.run(
        [sys.executable, "-m", "innerpo.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )
