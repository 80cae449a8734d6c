"""Small helpers shared by the loss components: argument checks and log-ratios.

Kept apart from base.py so the loss contract stays as it is.
"""

from __future__ import annotations

import math

from torch import Tensor

from innerpo.losses.base import LossInputs, SeqLogps, require_reference


def check_label_smoothing(eps: float, name: str, *, allow_zero: bool = True) -> None:
    """ε must lie in [0, 0.5) (or (0, 0.5) when the loss takes log ε)."""
    low_ok = eps >= 0.0 if allow_zero else eps > 0.0
    if not (math.isfinite(eps) and low_ok and eps < 0.5):
        interval = "[0, 0.5)" if allow_zero else "(0, 0.5)"
        hint = "try --method.label_smoothing=1e-3" if not allow_zero else "try --method.label_smoothing=0.1"
        raise ValueError(f"{name}: label_smoothing must be in {interval}, got {eps}; {hint}")


def _refuse(name: str, field: str, value, expected: str, hint: str | None) -> None:
    tail = f"; try --method.{field}={hint}" if hint else ""
    raise ValueError(f"{name}: {field} must be {expected}, got {value}{tail}")


def check_nonneg(value: float, name: str, field: str, hint: str | None = None) -> None:
    """value is a finite number >= 0; `name` is the component, `field` its option."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
        _refuse(name, field, value, "a finite number >= 0", hint)


def check_positive(value: float, name: str, field: str, hint: str | None = None) -> None:
    """value is a finite number > 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
        _refuse(name, field, value, "a finite number > 0", hint)


def check_optional_positive(value: float | None, name: str, field: str, hint: str | None = None) -> None:
    """value is None (off) or a finite number > 0."""
    if value is not None:
        check_positive(value, name, field, hint)


def check_fraction(value: float, name: str, field: str, hint: str | None = None) -> None:
    """value lies in [0, 1]."""
    if not (isinstance(value, (int, float)) and 0 <= value <= 1):
        _refuse(name, field, value, "in [0, 1]", hint)


def logratios(x: LossInputs, name: str) -> tuple[Tensor, Tensor]:
    """[B] summed log-ratios log π(y|x) − log π_ref(y|x) of the chosen and the rejected completions."""
    ref_c, ref_r = require_reference(x, name)
    return x.policy_chosen.sum - ref_c.sum, x.policy_rejected.sum - ref_r.sum


def per_token(values: Tensor, seq: SeqLogps) -> Tensor:
    """[B] values divided by the completion's token count (policy and reference share the completion)."""
    return values / seq.ntok.clamp(min=1)
