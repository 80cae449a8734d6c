import re

import pytest

from innerpo.data import synthetic
from innerpo.data.synthetic import SHIFTS, generate

N = 300
NUMBER_SHIFTS = ("in_domain", "difficulty_scaling")


def numbers(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def words_to_numbers() -> dict[str, int]:
    units = "one two three four five six seven eight nine".split()
    teens = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
    tens = "twenty thirty forty fifty sixty seventy eighty ninety".split()
    table = {w: 10 + i for i, w in enumerate(teens)}
    for t, tw in enumerate(tens, start=2):
        table[tw] = 10 * t
        table.update({f"{tw}-{u}": 10 * t + i for i, u in enumerate(units, start=1)})
    return table


def instance(shift: str, item: dict) -> frozenset:
    """The number pair (or word pair) behind an item, as the test understands it."""
    if shift == "alt_encoding":
        table = words_to_numbers()
        return frozenset((table[item["chosen"]], table[item["rejected"]]))
    if shift == "unrelated_skill":
        return frozenset((item["chosen"], item["rejected"]))
    return frozenset(numbers(item["prompt"]))


def test_every_shift_is_described():
    assert SHIFTS[:2] == ("in_domain", "difficulty_scaling")
    assert len(SHIFTS) >= 4 and len(set(SHIFTS)) == len(SHIFTS)
    assert set(synthetic.DESCRIPTIONS) == set(SHIFTS)
    assert all(synthetic.DESCRIPTIONS[s].strip() for s in SHIFTS)


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_items_are_well_formed(shift, split):
    items = generate(shift, split, N)
    assert len(items) == N
    for item in items:
        assert set(item) == {"prompt", "chosen", "rejected"}
        assert all(isinstance(v, str) and v.strip() for v in item.values())
        assert item["chosen"] != item["rejected"]
    assert len({item["prompt"] for item in items}) == N


@pytest.mark.parametrize("shift", SHIFTS)
def test_deterministic_for_a_seed_and_different_across_seeds(shift):
    assert generate(shift, "train", 50, seed=3) == generate(shift, "train", 50, seed=3)
    assert generate(shift, "train", 50, seed=3) != generate(shift, "train", 50, seed=4)
    # A smaller request is a prefix of a larger one, so "the first n pairs" is well defined.
    assert generate(shift, "test", 20, seed=3) == generate(shift, "test", 50, seed=3)[:20]


@pytest.mark.parametrize("shift", SHIFTS)
def test_train_and_test_share_no_prompt_and_no_instance(shift):
    train = generate(shift, "train", 2000)
    test = generate(shift, "test", 200)
    assert not {x["prompt"] for x in train} & {x["prompt"] for x in test}
    assert not {instance(shift, x) for x in train} & {instance(shift, x) for x in test}


@pytest.mark.parametrize("shift", [s for s in SHIFTS if s != "unrelated_skill"])
def test_no_shift_tests_on_number_pairs_trained_in_domain(shift):
    trained = {instance("in_domain", x) for x in generate("in_domain", "train", 2000)}
    assert not trained & {instance(shift, x) for x in generate(shift, "test", 200)}


@pytest.mark.parametrize("shift", NUMBER_SHIFTS)
def test_number_shifts_prefer_the_larger_number_of_the_prompt(shift):
    for item in generate(shift, "test", N):
        a, b = numbers(item["prompt"])
        assert a != b
        assert (int(item["chosen"]), int(item["rejected"])) == (max(a, b), min(a, b))
        assert len(item["chosen"]) == len(item["rejected"])


def test_in_domain_uses_two_digit_numbers():
    for item in generate("in_domain", "train", N):
        assert all(10 <= x <= 99 for x in numbers(item["prompt"]))


def test_difficulty_scaling_needs_more_than_the_first_digit():
    for item in generate("difficulty_scaling", "test", N):
        a, b = item["chosen"], item["rejected"]
        assert 4 <= len(a) <= 6 and not a.startswith("0") and a[0] == b[0]


def test_alt_encoding_prefers_the_larger_spelled_number():
    table = words_to_numbers()
    for item in generate("alt_encoding", "test", N):
        assert not re.search(r"\d", item["prompt"])
        assert item["chosen"] in item["prompt"] and item["rejected"] in item["prompt"]
        assert table[item["chosen"]] > table[item["rejected"]]


def test_spell():
    assert [synthetic.spell(n) for n in (10, 13, 20, 47, 90, 99)] == [
        "ten",
        "thirteen",
        "twenty",
        "forty-seven",
        "ninety",
        "ninety-nine",
    ]


def test_story_context_prefers_the_person_with_more():
    for item in generate("story_context", "test", N):
        (n1, c1), (n2, c2) = re.findall(r"(\w+) has (\d+)", item["prompt"])
        more, fewer = (n1, n2) if int(c1) > int(c2) else (n2, n1)
        assert (item["chosen"], item["rejected"]) == (more, fewer)


def test_unrelated_skill_prefers_the_alphabetically_first_word():
    for item in generate("unrelated_skill", "test", N):
        assert item["chosen"] in item["prompt"] and item["rejected"] in item["prompt"]
        assert item["chosen"] < item["rejected"]


@pytest.mark.parametrize("shift", SHIFTS)
def test_chosen_is_not_tied_to_a_position(shift):
    items = generate(shift, "train", 1000)
    first = sum(x["prompt"].index(x["chosen"]) < x["prompt"].index(x["rejected"]) for x in items)
    assert 400 < first < 600


def test_unknown_shift_or_split_names_the_valid_ones():
    with pytest.raises(ValueError, match="in_domain.*difficulty_scaling"):
        generate("nope", "train", 1)
    with pytest.raises(ValueError, match="train.*test.*validation"):
        generate("in_domain", "dev", 1)


@pytest.mark.parametrize("shift", SHIFTS)
def test_validation_split_shares_no_instance_with_test_or_train(shift):
    from innerpo.data.sources import SYNTHETIC_SIZE

    validation = generate(shift, "validation", SYNTHETIC_SIZE["validation"])
    assert len({item["prompt"] for item in validation}) == SYNTHETIC_SIZE["validation"]
    assert validation == generate(shift, "validation", SYNTHETIC_SIZE["validation"])  # deterministic
    held_out = {instance(shift, item) for item in validation}
    assert not held_out & {instance(shift, item) for item in generate(shift, "test", SYNTHETIC_SIZE["test"])}
    assert not held_out & {instance(shift, item) for item in generate(shift, "train", SYNTHETIC_SIZE["train"])}
    # the in-domain training pairs of every other shift's numbers are kept out too
    if shift in ("in_domain", "alt_encoding", "story_context"):
        assert not held_out & {
            instance("in_domain", item) for item in generate("in_domain", "train", SYNTHETIC_SIZE["train"])
        }


def test_adding_validation_left_train_and_test_unchanged():
    # The last pair of each split, recorded before the validation split existed.
    assert generate("in_domain", "train", 2000)[-1] == {
        "prompt": "Which number is bigger: 45 or 28?",
        "chosen": "45",
        "rejected": "28",
    }
    assert generate("in_domain", "test", 200)[-1] == {
        "prompt": "Which is larger, 42 or 49?",
        "chosen": "49",
        "rejected": "42",
    }
    assert (
        generate("unrelated_skill", "test", 200)[-1]["prompt"]
        == "Pick the word that comes first in a dictionary: voice or bottle."
    )
