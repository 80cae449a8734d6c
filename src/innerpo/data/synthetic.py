"""The built-in synthetic preference suite: "which number is larger?", under shift.

Every in-domain pair asks which of two two-digit numbers is the larger one; the chosen
answer is the larger number and the rejected answer the smaller, both bare numbers of
the same length, so the preference lives only in the content and no fixed token or
position marks the chosen side. SmolLM2-135M-Instruct does not follow this rule by
itself (42-51% preference accuracy on 200 test pairs, seeds 0 and 1), yet a rank-16
LoRA trained with DPO picks it up within a few dozen steps and applies it to number
pairs it never saw (99-100% after 60-80 steps of 8 pairs at lr 5e-4). That gives a
clear in-domain effect, and the shifts then ask whether what was learned is "the
larger number" or something narrower (measured after training: it carries over to
longer numbers and to spelled-out numbers, not to the story or to alphabetical order):

- ``in_domain``: the training distribution; the question in one of a few phrasings.
- ``difficulty_scaling``: the same rule on 4-6 digit numbers of equal length that share
  a leading prefix, so the first digit no longer decides (GENIES "difficulty").
- ``alt_encoding``: the same two-digit comparisons with the numbers spelled out in
  English words, in the question and the answers (GENIES "encoding").
- ``story_context``: the same comparison inside a one-line story ("Mia has 47 shells
  and Leo has 82 shells. Who has more shells?"), answered with a name, so the rule must
  be applied through an unfamiliar context and answer form (GENIES "context").
- ``unrelated_skill``: which of two words comes first in alphabetical order; the same
  two-choice format with a different rule, where training need not transfer and a
  learned "pick the later/larger one" habit would show up as a drop (GENIES "skill").

Train and test never share an instance: an instance (an unordered pair of numbers or
words) goes to the test split when a CRC32 of it falls in a fixed fifth of the range,
in every shift and for every seed alike, so no test prompt of any shift reuses a
number pair seen in ``in_domain`` training. Generation uses a ``random.Random`` seeded
from the seed and a CRC32 of the shift and split names, so it is identical across
processes and platforms.

The ``validation`` split (for hyperparameter search, innerpo.tune) holds pairs whose
instance is in the test fifth but in none of the pairs of the test split as the suite
uses it (its first ``test_size`` pairs): so a validation pair never shares an instance
with a test pair, nor with any train pair of any shift, and train and test stay exactly
what they were before the split existed.
"""

from __future__ import annotations

import random
import zlib

SHIFTS: tuple[str, ...] = ("in_domain", "difficulty_scaling", "alt_encoding", "story_context", "unrelated_skill")

DESCRIPTIONS: dict[str, str] = {
    "in_domain": "Pick the larger of two two-digit numbers; the distribution the demo trains on.",
    "difficulty_scaling": "The same rule on 4-6 digit numbers sharing a leading prefix (GENIES difficulty).",
    "alt_encoding": "The same two-digit comparisons with numbers spelled out in English words (GENIES encoding).",
    "story_context": "The same comparison inside a one-line story, answered with a person's name (GENIES context).",
    "unrelated_skill": "Pick the word that comes first alphabetically: same format, different rule (GENIES skill).",
}

SPLITS = ("train", "test", "validation")

QUESTIONS = (
    "Which is larger, {a} or {b}?",
    "Which number is bigger: {a} or {b}?",
    "Of {a} and {b}, which is greater?",
    "Pick the larger number: {a} or {b}.",
)

ALPHA_QUESTIONS = (
    "Which word comes first in alphabetical order, {a} or {b}?",
    "Which comes first alphabetically: {a} or {b}?",
    "Of {a} and {b}, which is earlier in the alphabet?",
    "Pick the word that comes first in a dictionary: {a} or {b}.",
)

NAMES = ("Mia", "Leo", "Ana", "Sam", "Ivy", "Max", "Zoe", "Ben", "Eva", "Tom", "Lily", "Jack")
THINGS = ("apples", "shells", "coins", "stickers", "books", "marbles", "stamps", "pencils")

WORDS = (
    "apple",
    "bread",
    "cloud",
    "dance",
    "eagle",
    "flame",
    "grape",
    "house",
    "island",
    "jelly",
    "kite",
    "lemon",
    "melon",
    "night",
    "ocean",
    "piano",
    "queen",
    "river",
    "stone",
    "tiger",
    "uncle",
    "voice",
    "water",
    "yacht",
    "zebra",
    "anchor",
    "basket",
    "candle",
    "desert",
    "engine",
    "forest",
    "garden",
    "hammer",
    "jacket",
    "kitten",
    "ladder",
    "mirror",
    "needle",
    "orange",
    "pepper",
    "rabbit",
    "silver",
    "table",
    "violin",
    "window",
    "yellow",
    "bottle",
    "carpet",
    "dinner",
    "finger",
)

ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

TEST_SHARE = 5  # one instance in TEST_SHARE goes to the test split


def spell(n: int) -> str:
    """English words for 0 <= n < 100, e.g. 47 -> "forty-seven"."""
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + (f"-{ONES[ones]}" if ones else "")


def _two_digit_pair(rng: random.Random) -> list[int]:
    return rng.sample(range(10, 100), 2)


def _digits(rng: random.Random, k: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(k))


def _long_pair(rng: random.Random) -> tuple[int, int]:
    """Two numbers of the same 4-6 digit length that agree on a leading prefix of 1 to length-1 digits."""
    length = rng.randint(4, 6)
    prefix = str(rng.randint(1, 9)) + _digits(rng, rng.randint(0, length - 2))
    tail = length - len(prefix) - 1
    da, db = rng.sample(range(10), 2)  # the first digit where they differ
    return int(prefix + str(da) + _digits(rng, tail)), int(prefix + str(db) + _digits(rng, tail))


def _in_domain(rng: random.Random) -> tuple[str, dict]:
    a, b = _two_digit_pair(rng)
    prompt = rng.choice(QUESTIONS).format(a=a, b=b)
    return _key(a, b), {"prompt": prompt, "chosen": str(max(a, b)), "rejected": str(min(a, b))}


def _difficulty_scaling(rng: random.Random) -> tuple[str, dict]:
    a, b = _long_pair(rng)
    prompt = rng.choice(QUESTIONS).format(a=a, b=b)
    return _key(a, b), {"prompt": prompt, "chosen": str(max(a, b)), "rejected": str(min(a, b))}


def _alt_encoding(rng: random.Random) -> tuple[str, dict]:
    a, b = _two_digit_pair(rng)
    prompt = rng.choice(QUESTIONS).format(a=spell(a), b=spell(b))
    return _key(a, b), {"prompt": prompt, "chosen": spell(max(a, b)), "rejected": spell(min(a, b))}


def _story_context(rng: random.Random) -> tuple[str, dict]:
    a, b = _two_digit_pair(rng)
    na, nb = rng.sample(NAMES, 2)
    things = rng.choice(THINGS)
    prompt = f"{na} has {a} {things} and {nb} has {b} {things}. Who has more {things}?"
    more, fewer = (na, nb) if a > b else (nb, na)
    return _key(a, b), {"prompt": prompt, "chosen": more, "rejected": fewer}


def _unrelated_skill(rng: random.Random) -> tuple[str, dict]:
    a, b = rng.sample(WORDS, 2)
    prompt = rng.choice(ALPHA_QUESTIONS).format(a=a, b=b)
    return _key(a, b), {"prompt": prompt, "chosen": min(a, b), "rejected": max(a, b)}


def _key(a, b) -> str:
    """The instance behind a prompt, independent of order and phrasing."""
    return ",".join(sorted(map(str, (a, b))))


def in_test_split(key: str) -> bool:
    return zlib.crc32(key.encode()) % TEST_SHARE == 0


MAKERS = {
    "in_domain": _in_domain,
    "difficulty_scaling": _difficulty_scaling,
    "alt_encoding": _alt_encoding,
    "story_context": _story_context,
    "unrelated_skill": _unrelated_skill,
}


def generate(shift: str, split: str, n: int, seed: int = 0, test_size: int = 200) -> list[dict]:
    """n distinct pairs of `shift`'s `split`; the same (shift, split, n, seed) always gives the same list.

    Each item is {"prompt", "chosen", "rejected"}. Train, test and validation draw from
    disjoint instances; `test_size` (validation only) is how many test pairs validation
    must avoid. Raises ValueError for an unknown shift or split, or when a split has
    fewer than n distinct prompts.
    """
    if shift not in MAKERS:
        raise ValueError(f"unknown synthetic shift {shift!r}; valid shifts: {', '.join(SHIFTS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    used = {key for key, _ in _draw(shift, "test", test_size, seed, set())} if split == "validation" else set()
    drawn = _draw(shift, split, n, seed, used)
    if len(drawn) < n:
        raise ValueError(f"synthetic:{shift} has fewer than {n} distinct {split} prompts")
    return [item for _, item in drawn]


def _draw(shift: str, split: str, n: int, seed: int, avoid: set[str]) -> list[tuple[str, dict]]:
    """Up to n (instance key, item) of distinct prompts from `split`'s share of instances, none in `avoid`."""
    rng = random.Random((seed << 32) + zlib.crc32(f"{shift}/{split}".encode()))
    want_test = split != "train"
    drawn, seen = [], set()
    for _ in range(50 * n + 1000):
        if len(drawn) == n:
            break
        key, item = MAKERS[shift](rng)
        if in_test_split(key) == want_test and key not in avoid and item["prompt"] not in seen:
            seen.add(item["prompt"])
            drawn.append((key, item))
    return drawn
