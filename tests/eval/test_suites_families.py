"""Named suites from the GENIES shift list, the research families' loaders, and --eval.suite=auto."""

import datasets
import pytest

from innerpo.data.pairs import Pair
from innerpo.data.sources import load_pairs
from innerpo.errors import ConfigError
from innerpo.eval.shift_families import GENIES_PAIRS
from innerpo.eval.suites import SUITES, auto_suite, get_suite


def test_every_local_genies_pair_is_a_suite(shared_genies):
    from pathlib import Path

    for source, target, category in GENIES_PAIRS:
        suite = SUITES[f"genies-{source}-to-{target}"]
        assert (
            suite.shifts["in_domain"].dataset == f"genies:{source}"
            and suite.shifts[category].dataset == f"genies:{target}"
        )
        for name in (source, target):  # the shared data really has both sides
            assert (Path(shared_genies) / name / "test.json").is_file()
    assert len(GENIES_PAIRS) == 13
    assert set(SUITES["genies-from-alpaca_mmlu"].shifts) == {
        "in_domain",
        "ranking_logic",
        "truthful_qa",
        "survival_influence",
        "reward_seeking",
        "sycophancy_mimicry",
        "wrong_arc",
    }


def test_auto_picks_the_suite_from_the_training_data():
    assert auto_suite("synthetic") == "synthetic" and auto_suite("synthetic:alt_encoding") == "synthetic"
    assert auto_suite("genies:alpaca_easy") == "genies-alpaca"
    assert auto_suite("genies:math") == "genies-from-math"
    assert get_suite("auto", "genies:alpaca_mmlu").name == "genies-from-alpaca_mmlu"
    with pytest.raises(ConfigError, match="no suite is known for training data 'mine.jsonl'"):
        auto_suite("mine.jsonl")
    with pytest.raises(ConfigError, match="needs the training dataset"):
        get_suite("auto")


ETHICS_ROWS = {  # wassname/ethics_expression_preferences, justice: prompt/chosen/rejected strings
    "prompt": ["I usually give my brother a ride to school, but this week I didn't because"],
    "chosen": ["he was suspended from school for fighting."],
    "rejected": ["he forgot to say thank you once."],
}
MEDICAL_ROWS = {  # Morefreedai/medical-dpo-V2 upstream: one-message chat lists
    "prompt": [[{"role": "user", "content": "头痛吃什么药？"}]],
    "chosen": [[{"role": "assistant", "content": "先明确病因，再对症用药。"}]],
    "rejected": [[{"role": "assistant", "content": "随便吃点。"}]],
}


def test_research_families_load_their_formats(monkeypatch):
    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return datasets.Dataset.from_dict(ETHICS_ROWS if "ethics" in path else MEDICAL_ROWS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_pairs("ethics:justice", "test") == [
        Pair(ETHICS_ROWS["prompt"][0], ETHICS_ROWS["chosen"][0], ETHICS_ROWS["rejected"][0])
    ]
    medical = load_pairs("medical", "test")
    assert medical[0].prompt == (("user", "头痛吃什么药？"),) and medical[0].chosen == "先明确病因，再对症用药。"
    assert calls == [
        ("wassname/ethics_expression_preferences", "justice", "test"),
        ("wassname/medical-dpo-V2", "test", "data"),
    ]
    suite = SUITES["research-alpaca_easy"]
    assert (
        suite.shifts["moral_transfer"].dataset == "ethics:justice" and suite.shifts["orthogonal"].dataset == "medical"
    )


def test_research_family_fixture_on_disk(tmp_path):
    # The same rows saved locally (as a user without the hub would) load through the path loader.
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(ETHICS_ROWS)}).save_to_disk(str(tmp_path / "ethics"))
    assert load_pairs(str(tmp_path / "ethics"), "test")[0].chosen == ETHICS_ROWS["chosen"][0]
    with pytest.raises(Exception, match="unknown ETHICS config 'virtue'"):
        load_pairs("ethics:virtue", "test")
