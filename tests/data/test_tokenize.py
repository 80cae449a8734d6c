import pytest

from innerpo.data.batching import EpochBatchSampler, collate
from innerpo.data.pairs import Pair
from innerpo.data.tokenize import MIN_PROMPT_TOKENS, PairTokenizer, TokenizeReport
from innerpo.errors import DataError


def test_chat_template_and_prompt_mask(tiny_tok):
    pt = PairTokenizer(tiny_tok, 256)
    item = pt(Pair("What is 2+2?", "4", "five"))
    text = tiny_tok.decode(list(item.prompt))
    assert text == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert tiny_tok.decode(list(item.chosen)) == "4<|im_end|>\n"
    batch = collate([item], tiny_tok.pad_token_id)
    # rows: chosen then rejected; the mask covers exactly the completion tokens
    chosen_row = batch.input_ids[0][batch.completion_mask[0]].tolist()
    rejected_row = batch.input_ids[1][batch.completion_mask[1]].tolist()
    assert chosen_row == list(item.chosen) and rejected_row == list(item.rejected)
    assert batch.attention_mask[0].sum() == len(item.prompt) + len(item.chosen)
    assert not batch.completion_mask[0, : len(item.prompt)].any()


def test_without_template_appends_eos(tiny_tok):
    pt = PairTokenizer(tiny_tok, 256, chat_template="off")
    item = pt(Pair("Q:", "yes", "no"))
    assert tiny_tok.decode(list(item.prompt)) == "Q:"
    assert tiny_tok.decode(list(item.chosen)) == "yes<|im_end|>"


def test_length_rule_cuts_prompt_left_or_drops(tiny_tok):
    long_prompt = "x" * 200 + "END"
    pair = Pair(long_prompt, "a" * 20, "b" * 10)
    report = TokenizeReport()
    item = PairTokenizer(tiny_tok, 64)(pair, report)
    assert len(item.prompt) + len(item.chosen) == 64  # fills exactly to the limit
    assert tiny_tok.decode(list(item.prompt)).endswith("END<|im_end|>\n<|im_start|>assistant\n")
    assert report.prompt_truncated == 1 and report.kept == 1
    report = TokenizeReport()
    assert PairTokenizer(tiny_tok, 64, truncation="drop")(pair, report) is None
    assert report.dropped_too_long == 1
    # a completion that leaves fewer than MIN_PROMPT_TOKENS for the prompt is dropped, never cut
    big = Pair("q", "c" * (64 - MIN_PROMPT_TOKENS), "r")
    assert PairTokenizer(tiny_tok, 64)(big) is None


def test_all_dropped_is_an_error_naming_the_length_that_fits(tiny_tok):
    # chosen: 40 "c" + <|im_end|> + "\n" = 42 tokens; the prompt keeps at least 8: 50 fits.
    pairs = [Pair("q", "c" * 40, "r")] * 2
    with pytest.raises(
        DataError, match=r"src: none of the 2 pairs fits --data.max_length=16 .*fit with --data.max_length=50"
    ):
        PairTokenizer(tiny_tok, 16).tokenize_all(pairs, "src")
    assert PairTokenizer(tiny_tok, 50)(pairs[0]) is not None and PairTokenizer(tiny_tok, 49)(pairs[0]) is None
    with pytest.raises(DataError, match=r"fit with --data.max_length=62"):  # drop: 42 + the whole 20-token prompt
        PairTokenizer(tiny_tok, 16, truncation="drop").tokenize_all(pairs, "src")


def test_training_pairs_with_identical_completions_are_counted_and_dropped(tiny_tok):
    pairs = [Pair("q1", "a", "b"), Pair("q2", "same", "same"), Pair("q3", "c", "d")]
    items, report = PairTokenizer(tiny_tok, 64).tokenize_training(pairs, "src")
    assert [tiny_tok.decode(list(i.chosen)) for i in items] == ["a<|im_end|>\n", "c<|im_end|>\n"]
    assert report.kept == 2 and report.dropped_identical == 1
    assert report.describe("src") == "src: 2/3 pairs kept, 1 dropped with identical chosen and rejected completions"
    with pytest.raises(DataError, match="src: all 1 pairs have identical chosen and rejected completions"):
        PairTokenizer(tiny_tok, 64).tokenize_training([pairs[1]], "src")
    items, _ = PairTokenizer(tiny_tok, 64).tokenize_all(pairs, "src")  # evaluation keeps them
    assert len(items) == 3


def test_epoch_sampler_covers_each_index_once_and_reshuffles():
    s = EpochBatchSampler(10, 3, seed=1)
    first = [i for b in s for i in b]
    s.set_epoch(1)
    second = [i for b in s for i in b]
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second and len(s) == 4
    assert [i for b in EpochBatchSampler(10, 3, seed=1) for i in b] == first


def test_length_grouping_keeps_every_index_once_and_cuts_padding():
    import random

    lengths = [random.Random(i).randint(5, 200) for i in range(100)]
    s = EpochBatchSampler(100, 8, seed=0, lengths=lengths, group_batches=4)
    for epoch in range(3):
        s.set_epoch(epoch)
        batches = list(s)
        assert sorted(i for b in batches for i in b) == list(range(100))
        assert len(batches) == len(s)

    def waste(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert waste(list(s)) < 0.5 * waste(list(EpochBatchSampler(100, 8, seed=0)))
    s.set_epoch(0)
    first = list(s)
    s.set_epoch(1)
    assert first != list(s)
