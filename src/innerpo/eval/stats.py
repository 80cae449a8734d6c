"""95% confidence intervals for preference accuracies, from per-pair correct flags.

- One accuracy (k correct of n): the Wilson score interval (Wilson 1927), through
  scipy's `binomtest(...).proportion_ci(method="wilson")`. Unlike the Wald interval it
  stays inside [0, 1] and keeps its coverage near 0 and 1 and at small n.
- The change adapter − base on the *same* pairs: the Wald interval with the
  Agresti–Min adjustment (Agresti & Min 2005, Stat. Med. 24:729; recommended by
  Fagerland, Lydersen & Laake 2014, BMC Med. Res. Methodol. 14:1). With the 2×2 table of
  the two correct flags, e = both right, f = adapter only, g = base only, h = both wrong,
  n = e + f + g + h, the estimate is D = (f − g)/n, and with ½ added to each cell
      p̃_f = (f + ½)/(n + 2),  p̃_g = (g + ½)/(n + 2),  D̃ = p̃_f − p̃_g,
      D̃ ± z·√((p̃_f + p̃_g − D̃²)/(n + 2)),   z = Φ⁻¹(0.975),
  clipped to [−1, 1]. Only discordant pairs move it: two models right on the same easy
  pairs give a narrower interval than independent samples would. Newcombe's hybrid score
  interval was tried first and dropped: when the models agree on every pair it collapses
  to (nearly) zero width — "change 0.0 [0.0, 0.0]" from 100 pairs — where this one still
  says how far a difference could hide. No closed form in scipy; written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy.stats import binomtest, norm

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


def paired_difference_interval(
    adapter: Sequence[bool], base: Sequence[bool], level: float = LEVEL
) -> tuple[float, float, float]:
    """(D, lower, upper) for accuracy(adapter) − accuracy(base) on the same pairs (Agresti–Min)."""
    e, f, g, h = paired_table(adapter, base)
    n = e + f + g + h
    if n == 0:
        return math.nan, math.nan, math.nan
    z = float(norm.ppf(0.5 + level / 2))
    pf, pg = (f + 0.5) / (n + 2), (g + 0.5) / (n + 2)
    centre = pf - pg
    half = z * math.sqrt((pf + pg - centre**2) / (n + 2))
    return (f - g) / n, max(-1.0, centre - half), min(1.0, centre + half)
