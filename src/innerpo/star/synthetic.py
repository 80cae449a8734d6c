"""The built-in STaR task: multiple-choice addition, answered with a short rationale.

"What is 37 + 5?" with four close candidates (the sum, the sum without the carry, and
sums off by one or by ten); the rationale writes the sum out and names the matching
option ("37 + 5 = 42. The answer is 42."). It is the STaR paper's n-digit addition
(Zelikman et al. 2022, arXiv:2203.14465, section 5.1) made easier and multiple choice,
because the bundled SmolLM2-135M could not do the paper's version: the docs' STaR page
gives the formats tried and how the model scored on each; this one (write the sum, name
the option's number) is the one it scores above chance on, with room for STaR to teach
the sums. Multiple choice also lets the direct (option log-likelihood) accuracy be scored.

Levels (`synthetic:<level>`): `add1` (two-digit + one-digit, the default), `add2`
(two-digit + two-digit), `add3` (three-digit + three-digit). The train and test splits
draw from disjoint sets of operand pairs (one in five pairs is test, fixed whatever the
seed), so no held-out question is ever trained on; the `seed` picks which questions of
a split and the order of their options. A level with more than ENUMERATE_LIMIT operand
pairs (add3: 810,000) is not enumerated when n questions are asked for: pairs are drawn
uniformly and kept when they belong to the split and are new (add1 and add2 draw from
the enumerated split, as they always have).
"""

from __future__ import annotations

import random

from innerpo.errors import DataError
from innerpo.star.schema import LETTERS, Question

DEFAULT_LEVEL = "add1"
SPLITS = ("train", "test")
RANGES = {"add1": ((10, 99), (1, 9)), "add2": ((10, 99), (10, 99)), "add3": ((100, 999), (100, 999))}
SPLIT_SEED = 12345  # fixed: which operand pairs belong to which split never changes
ENUMERATE_LIMIT = 100_000


def _split_of(a: int, b: int) -> str:
    """A fixed, seed-independent split of operand pairs: one in five goes to test."""
    return "test" if random.Random(SPLIT_SEED * 1_000_003 + a * 1009 + b).random() < 0.2 else "train"


def _distractors(a: int, b: int) -> list[int]:
    total = a + b
    no_carry = sum(((a // 10**i) % 10 + (b // 10**i) % 10) % 10 * 10**i for i in range(len(str(max(a, b)))))
    candidates = [no_carry, total + 10, total - 10, total + 1, total - 1, total + 11]
    out = []
    for c in candidates:
        if c != total and c > 0 and c not in out:
            out.append(c)
    return out[:3]


def question(a: int, b: int, rng: random.Random, qid: str) -> Question:
    options = [a + b] + _distractors(a, b)
    rng.shuffle(options)
    return Question(
        qid, f"What is {a} + {b}?", tuple(str(o) for o in options), LETTERS[options.index(a + b)], "en", "addition"
    )


def questions(split: str, n: int | None = None, seed: int = 0, level: str = DEFAULT_LEVEL) -> list[Question]:
    """n questions (None: all) of `split` ("train" or "test"), in an order fixed by (split, seed, level)."""
    if level not in RANGES:
        raise DataError(f"synthetic STaR task: unknown level {level!r}; known: {', '.join(RANGES)}")
    if split not in SPLITS:
        raise DataError(f"synthetic STaR task has splits train and test, not {split!r}")
    (lo_a, hi_a), (lo_b, hi_b) = RANGES[level]
    rng = random.Random(f"{seed}-{split}-{level}")
    if n is not None and (hi_a - lo_a + 1) * (hi_b - lo_b + 1) > ENUMERATE_LIMIT:
        drawn: dict[tuple[int, int], None] = {}
        while len(drawn) < n:
            pair = (rng.randint(lo_a, hi_a), rng.randint(lo_b, hi_b))
            if pair not in drawn and _split_of(*pair) == split:
                drawn[pair] = None
        return [question(a, b, rng, f"{level}-{split}-{a}+{b}") for a, b in drawn]
    pool = [(a, b) for a in range(lo_a, hi_a + 1) for b in range(lo_b, hi_b + 1) if _split_of(a, b) == split]
    n = len(pool) if n is None else n
    if n > len(pool):
        raise DataError(f"synthetic STaR task {level}: the {split} split has {len(pool)} questions, {n} asked")
    chosen = rng.sample(pool, n)
    return [question(a, b, rng, f"{level}-{split}-{a}+{b}") for a, b in chosen]
