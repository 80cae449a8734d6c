"""Run directories built by hand: config.yaml, summary.json and pairs.parquet with chosen
correct flags, so report numbers can be checked against a known answer."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from innerpo.eval.calibration import rms_calibration_error
from innerpo.train.config import preset_config
from innerpo.train.run_dir import save_config

SHIFTS = {"in_domain": "synthetic:in_domain", "harder": "synthetic:difficulty_scaling"}


def make_run(
    path,
    method,
    seed,
    adapter,
    base,
    dataset="synthetic",
    lr=1e-4,
    suite="synthetic",
    datasets=SHIFTS,
    delta_nll=0.1,
    metrics=None,
    p_chosen=None,
):
    """adapter/base: {shift: 0/1 array over the same pairs}; p_chosen: {"adapter"|"base": {shift:
    probabilities}} for the calibration columns (absent: results written before they existed).
    Returns the run directory."""
    path.mkdir(parents=True)
    cfg = preset_config(method)
    cfg = dataclasses.replace(
        cfg,
        output_dir=str(path),
        data=dataclasses.replace(cfg.data, dataset=dataset),
        training=dataclasses.replace(cfg.training, seed=seed, lr=lr, max_steps=10),
    )
    save_config(path, cfg)
    frames, shifts = [], {}
    for shift, flags in adapter.items():
        n = len(flags)
        extra = {f"{v}_p_chosen": np.asarray(p[shift], float) for v, p in (p_chosen or {}).items()}
        frames.append(
            pd.DataFrame(
                {
                    **extra,
                    "pair_id": [f"{shift[:3]}{i:013d}" for i in range(n)],
                    "suite": suite,
                    "shift": shift,
                    "dataset": datasets[shift],
                    "split": "test",
                    "index": np.arange(n),
                    "adapter_correct": np.asarray(flags, bool),
                    "base_correct": np.asarray(base[shift], bool),
                }
            )
        )
        shifts[shift] = {
            "dataset": datasets[shift],
            "split": "test",
            "n_pairs": n,
            "adapter_accuracy": float(np.mean(flags)),
            "base_accuracy": float(np.mean(base[shift])),
            "coherence_delta_nll": delta_nll,
            "coherence_flag": delta_nll > 0.5,
        }
        for v, p in (p_chosen or {}).items():
            shifts[shift][f"{v}_rms_calibration_error"] = rms_calibration_error(p[shift])
    pd.concat(frames).to_parquet(path / "pairs.parquet", index=False)
    (path / "summary.json").write_text(json.dumps({"suite": suite, "coherence_threshold": 0.5, "shifts": shifts}))
    rows = (
        metrics
        if metrics is not None
        else [{"step": s, "loss": 0.7 - 0.01 * s * seed, "rewards/margins": 0.1 * s} for s in range(1, 4)]
    )
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def flags():
    rng = np.random.default_rng(0)
    return lambda p, n: (rng.random(n) < p).astype(int)
