"""Question sources: every format, bad rows named by file and row, gold answers checked."""

import json
import os
from pathlib import Path

import pytest

from innerpo.errors import DataError
from innerpo.star import synthetic
from innerpo.star.questions import canonical_number, load_questions

FIXTURES = Path(__file__).parent / "fixtures"
# ../shared/data beside the checkout (as tests/conftest.py), or INNERPO_SHARED_DATA.
SHARED = Path(os.environ.get("INNERPO_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")


def test_mmmlu_fixture_with_header_and_language_from_the_name():
    qs = load_questions(str(FIXTURES / "mmlu_YO-NG.csv"), "test")
    assert len(qs) == 3
    assert qs[0].language == "YO_NG" and qs[0].answer == "B" and qs[0].options[1] == "Abuja"
    assert qs[1].options[0] == "ẹja, tí ń wẹ̀"  # a quoted field with a comma
    assert qs[2].subject == "math" and qs[2].answer == "C"


def test_mmmlu_bad_rows(tmp_path):
    bad = tmp_path / "mmlu_SW-KE.csv"
    bad.write_text(",Question,A,B,C,D,Answer,Subject\n0,Q?,a,b,c,d,B,x\n1,Q2?,a,b,c,d,E,x\n")
    with pytest.raises(DataError, match=r"mmlu_SW-KE.csv, row 3: gold answer 'E' is not one of the options A, B, C, D"):
        load_questions(str(bad), "test")
    bad.write_text(",Question,A,B,C,D,Answer,Subject\n0,Q?,a,,c,d,B,x\n")
    with pytest.raises(DataError, match=r"row 2: option B is empty"):
        load_questions(str(bad), "test")
    bad.write_text(",Question,A,B,C,Answer\n0,Q?,a,b,c,B\n")
    with pytest.raises(DataError, match=r"row 1 \(header\): missing column\(s\) D"):
        load_questions(str(bad), "test")


def test_mmlu_directory_subjects_and_bad_rows(tmp_path):
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "astronomy_val.csv").write_text('"What orbits Earth?",Sun,Moon,Mars,Venus,B\nWhy?,a,b,c,d,A\n')
    (tmp_path / "val" / "law_val.csv").write_text("Q,a,b,c,d,D\n")
    qs = load_questions(str(tmp_path), "val")
    assert [q.subject for q in qs] == ["astronomy", "astronomy", "law"]
    assert load_questions(str(tmp_path), "val", subjects=["law"])[0].answer == "D"
    with pytest.raises(DataError, match="no subject"):
        load_questions(str(tmp_path), "val", subjects=["chemistry"])
    (tmp_path / "val" / "law_val.csv").write_text("Q,a,b,c,d,D\nQ2,a,b,c,d\n")
    with pytest.raises(DataError, match=r"law_val.csv, row 2: expected 6 fields"):
        load_questions(str(tmp_path), "val")
    (tmp_path / "val" / "law_val.csv").write_text("Q,a,b,c,d,X\n")
    with pytest.raises(DataError, match=r"law_val.csv, row 1: gold answer 'X'"):
        load_questions(str(tmp_path), "val")


def test_commonsense_and_gsm8k_jsonl(tmp_path):
    csqa = tmp_path / "train_rand_split.jsonl"
    row = {
        "answerKey": "C",
        "id": "x1",
        "question": {
            "question_concept": "c",
            "stem": "Where?",
            "choices": [{"label": L, "text": t} for L, t in zip("ABCDE", "abcde")],
        },
    }
    csqa.write_text(json.dumps(row) + "\n")
    (q,) = load_questions(str(tmp_path), "train")
    assert q.options == tuple("abcde") and q.answer == "C" and q.qid == "x1"
    gsm = tmp_path / "gsm.jsonl"
    gsm.write_text(json.dumps({"question": "How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 1,007"}) + "\n")
    assert load_questions(str(gsm), "train")[0].answer == "1007"
    gsm.write_text(json.dumps({"question": "How many?", "answer": "x\n#### seven"}) + "\n{oops\n")
    with pytest.raises(DataError, match=r"gsm.jsonl, line 1: gold answer ' seven' is not a number"):
        load_questions(str(gsm), "train")
    gsm.write_text(json.dumps({"question": "How many?", "answer": "#### 7"}) + "\n{oops\n")
    with pytest.raises(DataError, match=r"gsm.jsonl, line 2: not valid JSON"):
        load_questions(str(gsm), "train")
    row["answerKey"] = "F"
    csqa.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"line 1: gold answer 'F' is not one of the options A, B, C, D, E"):
        load_questions(str(tmp_path), "train")


def test_hub_format_saved_locally_uses_the_same_row_parser(tmp_path):
    # cais/mmlu's layout (choices list, integer answer) as a local JSONL file.
    path = tmp_path / "cais.jsonl"
    path.write_text(
        json.dumps({"question": "2+2?", "subject": "math", "choices": ["3", "4", "5", "6"], "answer": 1}) + "\n"
    )
    assert load_questions(str(path), "test")[0].answer == "B"


def test_synthetic_is_deterministic_disjoint_and_valid():
    a = synthetic.questions("train", 50, seed=3)
    assert a == synthetic.questions("train", 50, seed=3)
    assert a != synthetic.questions("train", 50, seed=4)
    for level in ("add1", "add2"):
        test = {q.question for q in synthetic.questions("test", level=level)}
        train = {q.question for q in synthetic.questions("train", level=level)}
        assert not test & train and len(test) > 100 and len(train) > 4 * len(test) * 0.9
    for q in a:
        x, y = (int(t) for t in q.question.removeprefix("What is ").rstrip("?").split(" + "))
        assert q.options[q.labels.index(q.answer)] == str(x + y)
        assert len(set(q.options)) == 4


def test_canonical_number():
    assert (
        canonical_number("1,234.50") == "1234.5" and canonical_number("$7") == "7" and canonical_number("-3.0") == "-3"
    )
    assert canonical_number("seven") is None


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_shared_datasets_parse():
    assert len(load_questions(str(SHARED / "commonsense_qa"), "dev")) == 1221
    assert len(load_questions(str(SHARED / "gsm8k"), "dev")) == 1319
    qs = load_questions(str(SHARED / "mmlu"), "val", subjects=["astronomy"])
    assert qs and all(q.answer in "ABCD" for q in qs)
