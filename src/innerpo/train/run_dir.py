"""What a run directory holds, and how to write and read it.

RUN/
  config.yaml        the resolved TrainConfig (reloadable with `from_dict`)
  tokenization.json  the tokenizer settings used (max length, truncation, template)
  tokenizer/         the tokenizer files
  adapter/           the LoRA adapter (peft format), replaced atomically
  metrics.jsonl      one JSON row per logged optimizer step or evaluation
  summary.json, results.md, pairs.parquet   the training-time evaluation on the run's suite
  eval-<name>/       the same three files for each later `innerpo eval` (never over the above)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from innerpo.config import TrainConfig, from_dict, to_dict
from innerpo.io import replace_dir, write_atomic


def new_run_dir(cfg: TrainConfig) -> Path:
    if cfg.output_dir:
        path = Path(cfg.output_dir)
    else:
        path = Path("outputs") / f"{cfg.method_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (path / "adapter").exists():
        raise FileExistsError(f"{path} already holds a trained adapter; choose another --output_dir")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_config(run_dir: Path, cfg: TrainConfig) -> None:
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load_config(run_dir: Path) -> TrainConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
    return from_dict(yaml.safe_load(path.read_text()))


def save_tokenizer(run_dir: Path, tok, settings: dict) -> None:
    replace_dir(run_dir / "tokenizer", tok.save_pretrained)
    write_atomic(run_dir / "tokenization.json", json.dumps(settings, indent=2))


def load_tokenization(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "tokenization.json").read_text())


def save_adapter(run_dir: Path, model) -> None:
    replace_dir(run_dir / "adapter", model.save_pretrained)


class MetricsLog:
    """Appends one JSON object per line, flushed at once so a crash loses nothing logged."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, row: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
