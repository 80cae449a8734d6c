"""Metrics of one optimizer step, averaged over its accumulation window."""

from __future__ import annotations

from collections import defaultdict

import torch
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

    def means(self, accelerator=None) -> dict[str, float]:
        """Pair-weighted means; with several processes, over all processes' micro-batches."""
        sums, weight = dict(self._sums), float(self._weight)
        if accelerator is not None and accelerator.num_processes > 1:
            names = list(sums)  # the same metrics, in the same order, on every process
            total = accelerator.reduce(
                torch.tensor([sums[n] for n in names] + [weight], dtype=torch.float64, device=accelerator.device),
                reduction="sum",
            )
            sums, weight = dict(zip(names, total[:-1].tolist())), float(total[-1])
        if not weight:
            return {}
        return {name: total / weight for name, total in sums.items()}
