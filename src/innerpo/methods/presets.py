"""Named presets for `innerpo train NAME`: a description and the method settings they fix."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from innerpo.config import MethodConfig, TrainConfig


@dataclass(frozen=True)
class Preset:
    description: str
    method: dict = field(default_factory=dict)  # MethodConfig field overrides


PRESETS: dict[str, Preset] = {
    "dpo": Preset("DPO with optional label smoothing (cDPO), arXiv:2305.18290", {"losses": ["dpo"], "weights": [1.0]}),
}


def preset_config(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(PRESETS)}")
    method = dataclasses.replace(MethodConfig(), **PRESETS[name].method)
    return TrainConfig(method=method, method_name=name)
