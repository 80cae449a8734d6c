"""Small helpers shared by the hidden-state losses."""

from __future__ import annotations

import math

from innerpo.losses.base import LossInputs
from innerpo.inner.hidden_inputs import HiddenInputs
from innerpo.inner.transforms import HiddenTransform, LayerTransforms, apply_transforms


def hidden_inputs(x: LossInputs, name: str, transform: LayerTransforms | HiddenTransform | None) -> HiddenInputs:
    """``x.hidden`` checked and mapped through the loss's transform."""
    h = x.hidden
    if not isinstance(h, HiddenInputs):
        raise ValueError(
            f"loss {name!r} needs hidden states: LossInputs.hidden must be an innerpo.inner.HiddenInputs "
            f"(got {type(h).__name__}); the loop fills it when a loss has needs_hidden = True"
        )
    return apply_transforms(transform, h)


def check_positive(value: float, what: str, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: {what} must be a positive finite number, got {value!r}")


def check_optional_positive(value: float | None, what: str, name: str) -> None:
    if value is not None:
        check_positive(value, what, name)


def check_fraction(value: float, what: str, name: str) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value <= 1):
        raise ValueError(f"{name}: {what} must be in [0, 1], got {value}")


def check_nonnegative(value: float, what: str, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: {what} must be a finite number ≥ 0, got {value!r}")
