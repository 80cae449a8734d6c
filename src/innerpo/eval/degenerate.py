"""Is a generated text degenerate? Pure functions on strings, no model.

Research runs found adapters whose preference accuracy looked fine while their text had
collapsed into loops; a mean-NLL delta alone does not show it. Two signs are checked:

- repetition: the share of n-grams that repeat an earlier one, 1 − unique/total, on
  lower-cased words (trigrams) and on characters (10-grams, which also catches loops
  without spaces such as "1111..." or text in scripts without word breaks); the larger
  of the two is compared with `max_repeat_share` (0.5: over half the text is repeats).
  Ordinary prose scores near 0; "the cat sat. the cat sat. the cat sat." scores ≈ 0.6.
- no end of sequence: the generation ran to its token budget without emitting an end
  token. A long good answer can do that too, so it is reported beside the flag, not in it.

A text is `degenerate` when it is repetitive or empty.
"""

from __future__ import annotations

WORD_N = 3
CHAR_N = 10
MAX_REPEAT_SHARE = 0.5


def repeated_ngram_share(tokens: list, n: int) -> float:
    """1 − (distinct n-grams / n-grams); 0.0 when the sequence has fewer than n + 1 items."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < 2:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def repetition(text: str) -> float:
    """The larger of the word-trigram and character-10-gram repeat shares of `text`."""
    return max(repeated_ngram_share(text.lower().split(), WORD_N), repeated_ngram_share(list(text), CHAR_N))


def problems(text: str, ended: bool, max_repeat_share: float = MAX_REPEAT_SHARE) -> list[str]:
    """Reasons, in a fixed order, from {"empty", "repetitive", "no_eos"}; [] for a clean finished text."""
    out = []
    if not text.strip():
        out.append("empty")
    elif repetition(text) > max_repeat_share:
        out.append("repetitive")
    if not ended:
        out.append("no_eos")
    return out


def is_degenerate(text: str, max_repeat_share: float = MAX_REPEAT_SHARE) -> bool:
    """Empty or repetitive (the end-of-sequence sign is reported separately)."""
    return bool(set(problems(text, True, max_repeat_share)) & {"empty", "repetitive"})
