"""Experiment trackers (W&B, TensorBoard, trackio) through accelerate's tracker integration.

The run's config is logged once, every metrics.jsonl row is streamed (its `step` as the
tracker's step), and at the end the evaluation's accuracy per shift (numbers) and its
markdown tables (text, where the tracker takes text). The run name is the method plus
the config values that differ from the method's preset (`dpo-lr=0.001-seed=3`), the
group is `--training.tracker_group` (a sweep sets it to its name). W&B runs offline
when no WANDB_API_KEY is set and WANDB_MODE is not chosen; TensorBoard writes its event
files under RUN/tensorboard/.
"""

from __future__ import annotations

import os
from pathlib import Path

from accelerate.utils import is_tensorboard_available, is_trackio_available, is_wandb_available

from innerpo.config import flatten, to_dict
from innerpo.errors import ConfigError, InputError
from innerpo.train.config import TrainConfig

AVAILABLE = {"wandb": is_wandb_available, "tensorboard": is_tensorboard_available, "trackio": is_trackio_available}
# Settings that only say where and how to report: never part of the run name.
_NOT_IN_NAME = {
    "output_dir",
    "config",
    "method_name",
    "training.report_to",
    "training.tracker_project",
    "training.tracker_group",
    "training.save_every",
    "training.keep_last",
}


class MissingExtra(InputError):
    """A requested tracker's package is not installed."""


def parse_trackers(report_to: list[str]) -> list[str]:
    """`["wandb,tensorboard"]` or `["wandb", "tensorboard"]` → checked names; fails before any output."""
    names = []
    for item in report_to:
        for name in (n.strip().lower() for n in item.split(",")):
            if not name or name == "none":
                continue
            if name not in AVAILABLE:
                raise ConfigError(f"--training.report_to: unknown tracker {name!r}; choose from {', '.join(AVAILABLE)}")
            if not AVAILABLE[name]():
                raise MissingExtra(
                    f"--training.report_to={name} needs the {name} package: pip install 'innerpo[{name}]'"
                )
            if name not in names:
                names.append(name)
    return names


def run_name(cfg: TrainConfig) -> str:
    """The method, then `key=value` for every setting that differs from the method's preset."""
    from innerpo.methods.presets import PRESETS
    from innerpo.train.config import preset_config

    if cfg.method_name not in PRESETS:
        return cfg.method_name
    preset = flatten(to_dict(preset_config(cfg.method_name)))
    parts = [cfg.method_name]
    for key, value in flatten(to_dict(cfg)).items():
        if key not in _NOT_IN_NAME and preset.get(key) != value:
            shown = Path(value).name if isinstance(value, str) and os.sep in value else value
            parts.append(f"{key.rsplit('.', 1)[-1]}={shown}")
    return "-".join(str(p) for p in parts)[:128]


def start_trackers(accelerator, cfg: TrainConfig, run_dir: Path, names: list[str]) -> None:
    """Initialise the trackers accelerate was built with (`log_with=names`) and log the config."""
    if not names:
        return
    if "wandb" in names and not os.environ.get("WANDB_API_KEY") and "WANDB_MODE" not in os.environ:
        os.environ["WANDB_MODE"] = "offline"
        accelerator.print(
            f"wandb: no WANDB_API_KEY, running offline in {run_dir / 'wandb'} (sync later with `wandb sync`)"
        )
    name = run_name(cfg)
    init = {
        "wandb": {"name": name, "group": cfg.training.tracker_group, "dir": str(run_dir)},
        "trackio": {"name": name, **({"group": cfg.training.tracker_group} if cfg.training.tracker_group else {})},
    }
    # trackers take plain scalars: lists and None become their text
    config = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in flatten(to_dict(cfg)).items()}
    accelerator.init_trackers(
        cfg.training.tracker_project, config=config, init_kwargs={k: v for k, v in init.items() if k in names}
    )


def tracker_sink(accelerator):
    """A MetricsLog sink: each row to every tracker, at the row's step."""

    def log(row: dict) -> None:
        accelerator.log(
            {k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float))}, step=row.get("step")
        )

    return log


def log_final(accelerator, summary: dict, tables_md: str, step: int) -> None:
    """The final evaluation: accuracy numbers per shift to every tracker, the tables as text."""
    values = {}
    for shift, s in summary["shifts"].items():
        for key in ("adapter_accuracy", "base_accuracy", "coherence_delta_nll"):
            if key in s:
                values[f"final/{shift}/{key}"] = s[key]
    accelerator.log(values, step=step)
    for tracker in accelerator.trackers:
        if tracker.name in ("wandb", "tensorboard"):
            tracker.log({"final/results": tables_md}, step=step)
