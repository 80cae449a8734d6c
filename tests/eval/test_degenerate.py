"""Degenerate-text detector (hand-computed shares) and greedy sampling with left padding."""

import pytest

from innerpo.eval.degenerate import is_degenerate, problems, repeated_ngram_share, repetition


def test_repeated_ngram_share_by_hand():
    # a b a b a b: bigrams ab ba ab ba ab -> 2 distinct of 5 -> 1 - 2/5
    assert repeated_ngram_share(list("ababab"), 2) == pytest.approx(0.6)
    assert repeated_ngram_share(list("abcdef"), 2) == 0.0
    assert repeated_ngram_share(["x"], 3) == 0.0  # too short to repeat


def test_repetition_takes_the_larger_of_words_and_characters():
    looping = "the cat sat. the cat sat. the cat sat."
    # words: 9 words -> 7 trigrams, 3 distinct -> 1 - 3/7
    assert repeated_ngram_share(looping.lower().split(), 3) == pytest.approx(4 / 7)
    assert repetition(looping) == pytest.approx(max(4 / 7, repeated_ngram_share(list(looping), 10)))
    assert repetition("1" * 30) > 0.9  # no spaces: caught by the character n-grams
    assert repetition("Paris is the capital of France and its largest city.") == 0.0


def test_problems_and_flag():
    assert problems("A fine answer.", ended=True) == []
    assert problems("A fine answer that ran long", ended=False) == ["no_eos"]
    assert problems("   ", ended=True) == ["empty"]
    assert problems("go go go go go go go go", ended=False) == ["repetitive", "no_eos"]
    assert is_degenerate("go go go go go go go go") and not is_degenerate("A fine answer that ran long")


def test_generation_pads_on_the_left_and_stops_at_the_end_token(tiny_model, monkeypatch):
    from innerpo.eval.samples import greedy

    model, tok = tiny_model
    short, long = tuple(tok("short")["input_ids"]), tuple(tok("a much longer prompt")["input_ids"])
    seen = {}
    real = model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        out = real(**kwargs)
        out[0, kwargs["input_ids"].shape[1] + 2] = tok.eos_token_id  # the short prompt's third new token ends it
        return out

    monkeypatch.setattr(model, "generate", spy)
    (text0, ended0), (_, ended1) = greedy(model, tok, [short, long], max_new_tokens=5, adapter=True)
    ids, mask = seen["input_ids"][0].tolist(), seen["attention_mask"][0].tolist()
    pad = len(long) - len(short)
    assert ids[pad:] == list(short) and ids[:pad] == [tok.pad_token_id] * pad  # prompt flush right
    assert mask == [0] * pad + [1] * len(short) and seen["do_sample"] is False
    assert ended0 and len(text0) <= 2 and not ended1  # cut at the end token; the other ran to the budget
