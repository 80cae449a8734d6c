"""Name → loss component. Adding a loss: one module, one line here, its tests."""

from __future__ import annotations

from typing import Callable

from innerpo.config import MethodConfig
from innerpo.losses.base import PreferenceLoss
from innerpo.losses.combined import CombinedLoss
from innerpo.losses.dpo import DPOLoss

# Each factory reads the hyperparameters its loss needs from the method config.
LOSSES: dict[str, Callable[[MethodConfig], PreferenceLoss]] = {
    "dpo": lambda c: DPOLoss(beta=c.beta, label_smoothing=c.label_smoothing),
}


def build_loss(name: str, cfg: MethodConfig) -> PreferenceLoss:
    """One component by name, configured from `cfg`."""
    try:
        factory = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}") from None
    return factory(cfg)


def build_method_loss(cfg: MethodConfig) -> CombinedLoss:
    """The method's whole objective: its losses summed with their weights."""
    return CombinedLoss({name: build_loss(name, cfg) for name in cfg.losses}, cfg.weights)
