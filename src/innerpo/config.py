"""Settings overlays: plain dataclasses filled from presets, a YAML file and the CLI.

Each component keeps its own settings dataclass (innerpo.models.config, data.config,
eval.config, methods.config, train.config); the helpers here work on any of them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TypeVar

import yaml

from innerpo.errors import ConfigError, yaml_problem

Settings = TypeVar("Settings")


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def flatten(values: dict, prefix: str = "") -> dict:
    """Nested dict → {"training.lr": ..., ...} (the flags' dotted names)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def merge(dc: Settings, values: dict, where: str) -> Settings:
    """Return a copy of dataclass `dc` with `values` (nested dict) applied, checking names."""
    names = {f.name: f for f in dataclasses.fields(dc)}
    updates = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(names))}")
        current = getattr(dc, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key!r} must be a mapping")
            value = merge(current, value, f"{where}.{key}")
        updates[key] = value
    return dataclasses.replace(dc, **updates)


def apply_yaml(cfg: Settings, path: str | Path) -> Settings:
    """Overlay a YAML file (same nesting as the CLI flags) onto a config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(yaml_problem(path, e)) from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return merge(cfg, values, str(path))


def apply_values(cfg: Settings, values: dict, where: str) -> Settings:
    """Overlay a nested dict (same nesting as the CLI flags) onto a config; `where` names
    the source in errors about unknown settings."""
    return merge(cfg, values, where)
