"""Per-question scores of n sampled rationales, and their mean over questions with a 95% interval.

- pass@1: the share of the n samples that are correct, c / n;
- pass@k (Chen et al. 2021, arXiv:2107.03374): the chance that at least one of k samples
  drawn without replacement from the n is correct, 1 − C(n−c, k) / C(n, k), unbiased for
  the model's pass@k; computed as the product 1 − ∏_{i=n−c+1}^{n} (1 − k / i), which
  never forms the large binomials;
- maj@n: the answer most samples give is the model's answer (self-consistency, Wang et al.
  2022). Only the answers of non-degenerate samples vote; a sample with no extracted
  answer does not vote, and with no votes at all the score is 0. A tie among t answers
  scores 1/t when the gold answer is one of them, else 0: the expected score of breaking
  the tie uniformly at random, so no tie rule favours the gold answer.

Over questions, `mean_interval` gives the mean with a 95% normal-approximation interval
(mean ± 1.96 · sd / √m, sd with m − 1 degrees of freedom, clipped to [0, 1]); for 0/1 scores
the Wilson interval of innerpo.eval.stats is used instead.
"""

from __future__ import annotations

import math
from collections import Counter

from scipy.stats import norm

Z95 = float(norm.ppf(0.975))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (1 ≤ k ≤ n, 0 ≤ c ≤ n)."""
    if not (1 <= k <= n and 0 <= c <= n):
        raise ValueError(f"pass@k needs 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every draw of k holds a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def maj_at_n(answers: list[str | None], gold: str) -> float:
    """Majority vote over the extracted answers (None: no vote); ties as in the module docstring."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    leaders = [a for a, v in votes.items() if v == top]
    return 1.0 / len(leaders) if gold in leaders else 0.0


def mean_interval(scores: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the 95% normal-approximation interval of the module docstring."""
    m = len(scores)
    if m == 0:
        return (float("nan"), float("nan"), float("nan"))
    mean = sum(scores) / m
    if m == 1:
        return (mean, mean, mean)
    sd = math.sqrt(sum((x - mean) ** 2 for x in scores) / (m - 1))
    half = Z95 * sd / math.sqrt(m)
    return (mean, max(0.0, mean - half), min(1.0, mean + half))
