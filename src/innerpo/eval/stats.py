"""95% confidence intervals for preference accuracies, from per-pair correct flags.

- One accuracy (k correct of n): the Wilson score interval (Wilson 1927), through
  scipy's `binomtest(...).proportion_ci(method="wilson")`. Unlike the Wald interval it
  stays inside [0, 1] and keeps its coverage near 0 and 1 and at small n.
- The change adapter − base on the *same* pairs: Newcombe's hybrid score interval for a
  difference of paired proportions (Newcombe 1998, Stat. Med. 17:2635, method 10; the
  interval Fagerland, Lydersen & Laake 2014, BMC Med. Res. Methodol. 14:1, recommend).
  With the 2×2 table of the two correct flags, e = both right, f = adapter only,
  g = base only, h = both wrong, n = e + f + g + h:
      p₁ = (e + f)/n (adapter), p₂ = (e + g)/n (base), D = p₁ − p₂ = (f − g)/n,
      [l₁, u₁], [l₂, u₂] their Wilson intervals,
      φ = (e·h − f·g) / √((e+f)(g+h)(e+g)(f+h))   (0 when a margin is empty),
      lower = D − √((p₁ − l₁)² − 2φ(p₁ − l₁)(u₂ − p₂) + (u₂ − p₂)²),
      upper = D + √((u₁ − p₁)² − 2φ(u₁ − p₁)(p₂ − l₂) + (p₂ − l₂)²).
  Pairing matters: two models right on the same easy pairs (φ > 0) give a narrower
  interval than independent samples would. No closed form in scipy; written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy.stats import binomtest

LEVEL = 0.95


def wilson_interval(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (nan, nan) when n == 0."""
    if n == 0:
        return math.nan, math.nan
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def paired_table(adapter: Sequence[bool], base: Sequence[bool]) -> tuple[int, int, int, int]:
    """(e, f, g, h): both right, adapter only, base only, both wrong."""
    if len(adapter) != len(base):
        raise ValueError(f"paired flags need equal lengths, got {len(adapter)} and {len(base)}")
    e = f = g = h = 0
    for a, b in zip(adapter, base):
        if a and b:
            e += 1
        elif a:
            f += 1
        elif b:
            g += 1
        else:
            h += 1
    return e, f, g, h


def paired_difference_interval(adapter: Sequence[bool], base: Sequence[bool], level: float = LEVEL) -> tuple[float, float, float]:
    """(D, lower, upper) for accuracy(adapter) − accuracy(base) on the same pairs (Newcombe method 10)."""
    e, f, g, h = paired_table(adapter, base)
    n = e + f + g + h
    if n == 0:
        return math.nan, math.nan, math.nan
    p1, p2 = (e + f) / n, (e + g) / n
    l1, u1 = wilson_interval(e + f, n, level)
    l2, u2 = wilson_interval(e + g, n, level)
    den = (e + f) * (g + h) * (e + g) * (f + h)
    phi = (e * h - f * g) / math.sqrt(den) if den else 0.0
    d = p1 - p2
    # max(0, ·) only guards rounding: with |φ| ≤ 1 each sum is a non-negative quadratic form.
    lower = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = d + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return d, max(-1.0, lower), min(1.0, upper)
