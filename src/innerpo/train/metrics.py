"""Metrics of one optimizer step, averaged over its accumulation window."""

from __future__ import annotations

from collections import defaultdict

from torch import Tensor


class StepMetrics:
    """Collects each micro-batch's metrics and returns their pair-weighted means.

    With gradient accumulation, an optimizer step sees several micro-batches; every
    logged value is the mean over all of them (weighted by pairs, so a short last batch
    counts for what it holds), never the last micro-batch alone.
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = defaultdict(float)
        self._weight = 0

    def add(self, metrics: dict[str, Tensor | float], num_pairs: int) -> None:
        for name, value in metrics.items():
            self._sums[name] += float(value) * num_pairs
        self._weight += num_pairs

    def means(self) -> dict[str, float]:
        if not self._weight:
            return {}
        return {name: total / self._weight for name, total in self._sums.items()}
