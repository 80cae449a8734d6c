import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from innerpo.data import genies
from innerpo.data.pairs import Pair, parse_pair
from innerpo.data.sources import load_pairs
from innerpo.errors import DataError

ROWS = [
    {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
    {
        "prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "3+3?"}],
        "chosen": [{"role": "assistant", "content": "6"}],
        "rejected": [{"role": "assistant", "content": "7"}],
    },
]


def test_plain_and_chat_rows_parse():
    plain, chat = (parse_pair(r, "x") for r in ROWS)
    assert plain == Pair("2+2?", "4", "5")
    assert chat.prompt_messages() == ROWS[1]["prompt"]
    assert (chat.chosen, chat.rejected) == ("6", "7")


@pytest.mark.parametrize(
    "row, fragment",
    [
        ({"prompt": "p", "chosen": "c"}, "missing rejected"),
        ({"prompt": 3, "chosen": "c", "rejected": "r"}, "'prompt' must be"),
        ({"prompt": "p", "chosen": "  ", "rejected": "r"}, "'chosen' is empty"),
        ({"prompt": "p", "chosen": [{"role": "user", "content": "c"}], "rejected": "r"}, "one assistant message"),
        ({"prompt": [{"role": "user"}], "chosen": "c", "rejected": "r"}, "prompt[0]"),
        ("just a string", "expected an object"),
    ],
)
def test_malformed_rows_name_the_problem(row, fragment):
    with pytest.raises(DataError, match="where") as e:
        parse_pair(row, "where")
    assert fragment in str(e.value)


def test_json_jsonl_parquet_files(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(ROWS))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    pq.write_table(pa.Table.from_pylist([ROWS[0], ROWS[0]]), tmp_path / "a.parquet")
    assert len(load_pairs(str(tmp_path / "a.json"))) == 2
    assert load_pairs(str(tmp_path / "a.jsonl")) == load_pairs(str(tmp_path / "a.json"))
    assert load_pairs(str(tmp_path / "a.parquet")) == [Pair("2+2?", "4", "5")] * 2


def test_bad_files_name_file_and_row(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: not valid JSON"):
        load_pairs(str(bad))
    missing_col = tmp_path / "m.json"
    missing_col.write_text(json.dumps([ROWS[0], {"prompt": "p", "chosen": "c"}]))
    with pytest.raises(DataError, match=r"m.json, row 1: missing rejected"):
        load_pairs(str(missing_col))
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_pairs(str(tmp_path / "nope.jsonl"))
    (tmp_path / "x.tsv").write_text("a\tb")
    with pytest.raises(DataError, match="unsupported file type"):
        load_pairs(str(tmp_path / "x.tsv"))


def test_saved_dataset_directory(tmp_path):
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_list([ROWS[0]] * 3)}).save_to_disk(tmp_path / "ds")
    assert len(load_pairs(str(tmp_path / "ds"), "train")) == 3
    with pytest.raises(DataError, match="no split 'test'"):
        load_pairs(str(tmp_path / "ds"), "test")


def test_genies_pairing_rule_is_deterministic_and_order_free():
    row = {"prompt": "P", "responses": {"a": 0.0, "best": 1.0, "b": 0.0, "c": 0.5}}
    pair = genies.row_to_pair(row, "r")
    assert (pair.chosen, pair.rejected) == ("best", min(["a", "b"], key=lambda t: genies._digest("P", t)))
    reordered = {"prompt": "P", "responses": dict(reversed(list(row["responses"].items())))}
    assert genies.row_to_pair(reordered, "r") == pair
    assert genies.row_to_pair({"prompt": "P", "responses": {"x": 1.0, "y": 1.0}}, "r") is None
    with pytest.raises(DataError, match="row 7"):
        genies.row_to_pair({"prompt": "P", "responses": {"x": 1.0}}, "row 7")


def test_genies_local_directory(tmp_path):
    (tmp_path / "toy").mkdir()
    rows = [{"prompt": f"q{i}", "responses": {"right": 1.0, "wrong": 0.0}} for i in range(3)]
    (tmp_path / "toy" / "test.json").write_text(json.dumps(rows))
    pairs = load_pairs("genies:toy", "test", str(tmp_path))
    assert [p.chosen for p in pairs] == ["right"] * 3
    with pytest.raises(FileNotFoundError, match="distributions there: toy"):
        load_pairs("genies:other", "test", str(tmp_path))


def test_real_genies_rows_parse(shared_genies):
    pairs = load_pairs("genies:alpaca_easy", "test", shared_genies)
    assert len(pairs) == 250 and all(p.chosen != p.rejected for p in pairs)


def test_genies_validation_and_fit_are_carved_out_of_train(tmp_path):
    rows = [{"prompt": f"P{i}", "responses": {"good": 1.0, "bad": 0.0}} for i in range(200)]
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "train.json").write_text(json.dumps(rows))
    train = load_pairs("genies:toy", "train", str(tmp_path))
    validation = load_pairs("genies:toy", "validation", str(tmp_path))
    fit = load_pairs("genies:toy", "fit", str(tmp_path))
    assert {p.prompt for p in validation}.isdisjoint({p.prompt for p in fit})
    assert sorted(p.prompt for p in validation + fit) == sorted(p.prompt for p in train)
    assert 5 <= len(validation) <= 40  # about a tenth of 200
    # the rule follows the prompt, not the file's order
    (tmp_path / "toy" / "train.json").write_text(json.dumps(rows[::-1]))
    assert {p.prompt for p in load_pairs("genies:toy", "validation", str(tmp_path))} == {p.prompt for p in validation}
