"""A sweep cell: one fully resolved TrainConfig (a StarRunConfig in a STaR sweep) and the run directory it runs in.

Cells are what executors take (a list of them), so anything that produces cells (the
sweep grid here, a tuner later) runs on every executor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from innerpo.star.config import StarRunConfig
from innerpo.train.config import TrainConfig

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


@dataclass(frozen=True)
class Cell:
    name: str
    """Readable and unique within the sweep: what differs from the shared settings."""
    dir: Path
    """The cell's run directory (an ordinary `innerpo train` run directory)."""
    config: TrainConfig | StarRunConfig
    """Fully resolved; its output_dir is `dir`. A StarRunConfig runs `innerpo star` (innerpo.experiments.star_cell)."""
    axes: dict = field(default_factory=dict)
    """The grid values that made this cell ({"method": "dpo", "seed": 1, "training.lr": 1e-4, ...})."""


def format_value(value) -> str:
    """Short text for a grid value in a cell name (1e-4 -> 0.0001, 5e-5 -> 5e-05)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "+".join(format_value(v) for v in value)
    return str(value)


def dataset_label(dataset: str) -> str:
    """`genies:alpaca_easy` -> `alpaca_easy`, `data/prefs.jsonl` -> `prefs`, `synthetic` stays."""
    if ":" in dataset and not Path(dataset).exists():
        return dataset.split(":", 1)[1]
    return Path(dataset).stem or dataset


def cell_name(method: str, seed: int, dataset: str | None = None, overrides: dict | None = None) -> str:
    """`<method>[_<dataset>][_<key>=<value>...]_seed<seed>`, keys shortened to their last
    part unless two override keys share it."""
    overrides = overrides or {}
    tails = [k.rsplit(".", 1)[-1] for k in overrides]
    parts = [method]
    if dataset is not None:
        parts.append(dataset_label(dataset))
    for key, value in overrides.items():
        short = key.rsplit(".", 1)[-1]
        parts.append(f"{short if tails.count(short) == 1 else key}={format_value(value)}")
    parts.append(f"seed{seed}")
    return _UNSAFE.sub("-", "_".join(parts))
