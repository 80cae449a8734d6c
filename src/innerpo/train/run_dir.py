"""What a run directory holds, and how to write and read it.

RUN/
  config.yaml        the resolved TrainConfig (reloadable with `from_dict`)
  tokenization.json  the tokenizer settings used (max length, truncation, template)
  tokenizer/         the tokenizer files
  adapter/           the LoRA adapter (peft format), replaced atomically
  method.safetensors the method's own trainable parameters (ETHER/HRA/OFT/ortho transforms), when it has any
  checkpoints/       resumable checkpoints, step-N/ each (see innerpo.train.checkpoint)
  metrics.jsonl      one JSON row per logged optimizer step or evaluation
  environment.json   versions, commit and machine of each start of the run (innerpo.train.environment)
  summary.json, results.md, pairs.parquet   the training-time evaluation on the run's suite
  eval-<name>/       the same three files for each later `innerpo eval` (never over the above)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from innerpo.config import to_dict
from innerpo.errors import ConfigError
from innerpo.io import atomic_path, replace_dir, write_atomic
from innerpo.train.config import TrainConfig, from_dict


def new_run_dir(cfg: TrainConfig) -> Path:
    if cfg.output_dir:
        path = Path(cfg.output_dir)
    else:
        path = Path("outputs") / f"{cfg.method_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (path / "adapter").exists():
        raise ConfigError(f"--output_dir={path} already holds a trained adapter; choose another --output_dir")
    if any((path / "checkpoints").glob("step-*")):
        raise ConfigError(
            f"--output_dir={path} holds checkpoints of an unfinished run: continue it with --resume {path}, "
            "or choose another --output_dir"
        )
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.jsonl").unlink(missing_ok=True)  # rows of a run killed before its first checkpoint
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


def method_params(method) -> dict[str, torch.Tensor]:
    """The method's trainable parameters by name (empty for methods without any)."""
    return {name: p.detach().cpu().contiguous() for name, p in method.named_parameters() if p.requires_grad}


def save_method_params(path: Path, method) -> None:
    """Write the method's trainable parameters as safetensors (nothing when it has none)."""
    params = method_params(method)
    if params:
        with atomic_path(path) as tmp:
            save_file(params, str(tmp))


def load_method_params(path: Path, method) -> None:
    """Load what `save_method_params` wrote; every trainable parameter must be in the file."""
    expected = set(method_params(method))
    if not expected:
        return
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: the method has trainable parameters {sorted(expected)}")
    tensors = load_file(str(path))
    if set(tensors) != expected:
        raise ValueError(f"{path} holds {sorted(tensors)}, the method trains {sorted(expected)}")
    with torch.no_grad():
        for name, p in method.named_parameters():
            if name in tensors:
                p.copy_(tensors[name])


class MetricsLog:
    """Appends one JSON object per line, flushed at once so a crash loses nothing logged.

    `enabled=False` (processes other than the main one) writes nothing; `sink`, when
    given, receives every row too (the experiment trackers).
    """

    def __init__(self, path: Path, enabled: bool = True, sink=None):
        self.path, self.enabled, self.sink = path, enabled, sink

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.sink is not None:
            self.sink(row)

    def size(self) -> int:
        """Bytes written so far: the log position a checkpoint records."""
        return self.path.stat().st_size if self.path.exists() else 0

    def truncate(self, size: int) -> None:
        """Cut the log back to `size` bytes (rows a killed run wrote after its checkpoint)."""
        if not self.enabled:
            return
        if self.size() < size:
            raise ValueError(
                f"{self.path} is {self.size()} bytes, shorter than the checkpoint's {size}: the log was edited or lost"
            )
        with self.path.open("r+b") as f:
            f.truncate(size)
