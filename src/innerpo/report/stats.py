"""Confidence intervals for accuracies over seeds and pairs, by scipy's bootstrap.

The data of one method on one shift is a matrix `values[seed, pair]` (1.0 where the
seed's adapter preferred the chosen completion of the pair, else 0.0): every seed is
scored on the same pairs. Two things vary if the experiment is run again: the training
seed and the sample of test pairs. The interval therefore resamples both, independently
(a two-way, crossed bootstrap: a resample draws S seeds with replacement and P pairs
with replacement and takes the mean of the S × P sub-matrix). With one seed only the
pairs are resampled. This is "hierarchical over seeds and pairs" for a crossed design
(every seed sees every pair) rather than a nested one.

scipy.stats.bootstrap does the resampling and the percentile interval: we hand it the
*indices* of seeds and of pairs as independent samples (`paired=False` resamples each
sample on its own) and a statistic that reads the matrix at the drawn indices. Paired
differences (method A vs baseline B on the same pairs) draw one set of pair indices used
for both; seeds are paired too when both have the same seeds (seed i of A against seed i
of B: same data order and LoRA initialisation), else drawn separately for each.

Miller (2024), "Adding error bars to evals", arXiv:2411.00640, argues for exactly these
paired per-item differences when comparing two models on one test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 9999
BATCH = 250  # resamples per vectorized call: bounds memory at BATCH × seeds × pairs floats


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n_seeds: int
    n_pairs: int
    resampled: str
    """What the interval resamples: `seeds and pairs`, `pairs`, or `none`."""

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def mean_ci(values: np.ndarray, seed: int = 0) -> Estimate:
    """Mean of `values[seed, pair]` with a 95% crossed-bootstrap interval."""
    m = np.asarray(values, dtype=float)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"expected a non-empty [seeds, pairs] matrix, got shape {m.shape}")
    return _difference(m, None, seed)


def paired_difference(a: np.ndarray, b: np.ndarray, seeds_match: bool, seed: int = 0) -> Estimate:
    """Mean of A minus mean of B, both [seeds, pairs] with the same pair columns, with a
    95% interval resampling pairs jointly and seeds jointly when `seeds_match` (same
    seed in the same row of A and B), else seeds of A and of B separately."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired difference needs the same pairs: {a.shape[1]} vs {b.shape[1]} columns")
    if seeds_match:
        if a.shape != b.shape:
            raise ValueError(f"matched seeds need equal shapes, got {a.shape} and {b.shape}")
        return _difference(a - b, None, seed)
    return _difference(a, b, seed)


def _difference(a: np.ndarray, b: np.ndarray | None, seed: int) -> Estimate:
    """mean(a) − mean(b) (b None: mean(a)); the samples handed to scipy are index arrays
    of every axis with at least two entries: seeds of a, seeds of b, pairs (shared)."""
    mats = [a] if b is None else [a, b]
    point = float(a.mean() - (b.mean() if b is not None else 0.0))
    axes = [("seeds", i, m.shape[0]) for i, m in enumerate(mats)] + [("pairs", None, a.shape[1])]
    free = [ax for ax in axes if ax[2] >= 2]
    resampled = " and ".join(dict.fromkeys(ax[0] for ax in free)) or "none"
    if not free:
        return Estimate(point, point, point, a.shape[0], a.shape[1], resampled)

    def statistic(*drawn, axis=-1):
        by_axis = dict(zip([(ax[0], ax[1]) for ax in free], drawn))
        batch = drawn[0].shape[:-1]
        pairs = by_axis.get(("pairs", None), np.broadcast_to(np.arange(a.shape[1]), (*batch, a.shape[1])))
        means = []
        for i, m in enumerate(mats):
            rows = by_axis.get(("seeds", i), np.broadcast_to(np.arange(m.shape[0]), (*batch, m.shape[0])))
            means.append(m[rows[..., :, None], pairs[..., None, :]].mean(axis=(-2, -1)))
        return means[0] - (means[1] if len(means) > 1 else 0.0)

    samples = tuple(np.arange(ax[2]) for ax in free)
    result = stats.bootstrap(
        samples,
        statistic,
        paired=False,
        vectorized=True,
        n_resamples=N_RESAMPLES,
        batch=BATCH,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return Estimate(point, float(ci.low), float(ci.high), a.shape[0], a.shape[1], resampled)
