"""The options of InnerDPO's align methods (innerpo.inner.align) that take settings.

``logodds`` and ``odds`` read a smoothing κ; ``stabilized_ratio`` reads its floor. The
other margins take none, and an option of a method not chosen is refused as unread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from innerpo.params import option

_LOGODDS = "with align_method logodds or odds"
_STABILIZED = "with align_method stabilized_ratio"


@dataclass
class AlignParams:
    align_method: str = "pars_rat"
    """InnerDPO margin (see innerpo.inner.align): pars_rat (s/‖d_ref‖ − 1, scale-free, 0 at the start), para_signed, para_signed_log, logodds, cosine_policy_margin, ..."""  # noqa: E501
    stabilized_floor_mode: Literal["percentile", "mean_fraction"] = option("percentile", read_when=_STABILIZED)
    """stabilized_ratio: floor the denominator at a percentile of the batch's reference separations (ReprPO's journal) or at a fraction of their mean."""  # noqa: E501
    stabilized_floor: float = option(0.1, read_when=_STABILIZED)
    """stabilized_ratio: the percentile as a fraction in (0, 1] (0.1 = 10th percentile) or the mean fraction φ."""
    logodds_smoothing: float = option(0.1, read_when=_LOGODDS)
    """logodds / odds: smoothing κ > 0 (c = κ·‖d_ref‖)."""


# align method → {its keyword argument: the option that carries it}
_SETTINGS = {
    "logodds": {"smoothing": "logodds_smoothing"},
    "odds": {"smoothing": "logodds_smoothing"},
    "stabilized_ratio": {"floor": "stabilized_floor", "floor_mode": "stabilized_floor_mode"},
}


def align_kwargs(p: AlignParams) -> dict:
    """The keyword arguments the chosen align method takes from `p`."""
    return {kw: getattr(p, name) for kw, name in _SETTINGS.get(p.align_method, {}).items()}


def align_reads(p: AlignParams) -> set[str]:
    """The align options read under `p`."""
    return {"align_method", *_SETTINGS.get(p.align_method, {}).values()}
