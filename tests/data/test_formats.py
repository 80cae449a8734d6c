"""CSV files and TRL's implicit-prompt conversations."""

import json

import pytest

from innerpo.data.pairs import Pair, parse_pair
from innerpo.data.sources import load_pairs
from innerpo.errors import DataError


def test_csv_pairs(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('prompt,chosen,rejected\n"Hi, there?",yes,no\nq2,"a ""quoted"" answer",b\n')
    assert load_pairs(str(path)) == [Pair("Hi, there?", "yes", "no"), Pair("q2", 'a "quoted" answer', "b")]


@pytest.mark.parametrize(
    "text,message",
    [
        ("prompt,chosen\np,c\n", r"p.csv, line 2: missing rejected"),
        ("prompt,chosen,rejected\np,c,r\nq,,r\n", r"p.csv, line 3: 'chosen' is empty"),
        ('prompt,chosen,rejected\np,c,r\n"unclosed,c,r\n', r"line \d: cannot read as CSV"),
        ("prompt,chosen,rejected\np,c,r,extra,more\n", r"line 2: 5 fields, but the header has 3"),
        ("", r"empty CSV"),
    ],
)
def test_bad_csv_is_named(tmp_path, text, message):
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load_pairs(str(path))


def msg(role, content):
    return {"role": role, "content": content}


def test_implicit_prompt_split_by_shared_prefix():
    row = {
        "chosen": [msg("system", "s"), msg("user", "u"), msg("assistant", "good")],
        "rejected": [msg("system", "s"), msg("user", "u"), msg("assistant", "bad")],
    }
    assert parse_pair(row, "r") == Pair((("system", "s"), ("user", "u")), "good", "bad")
    # multi-turn: an earlier shared assistant turn belongs to the prompt
    row = {
        "chosen": [msg("user", "a"), msg("assistant", "b"), msg("user", "c"), msg("assistant", "good")],
        "rejected": [msg("user", "a"), msg("assistant", "b"), msg("user", "c"), msg("assistant", "bad")],
    }
    assert parse_pair(row, "r").prompt == (("user", "a"), ("assistant", "b"), ("user", "c"))


@pytest.mark.parametrize(
    "chosen,rejected,message",
    [
        ([msg("user", "u")], [msg("user", "u")], "without an assistant turn"),
        (
            [msg("user", "u"), msg("assistant", "x")],
            [msg("user", "v"), msg("assistant", "y")],
            "share no opening message",
        ),
        ([msg("user", "u"), msg("assistant", "x")], [msg("user", "u"), msg("assistant", "x")], "identical"),
        (
            [msg("user", "u"), msg("assistant", "x"), msg("user", "more")],
            [msg("user", "u"), msg("assistant", "y")],
            r"'chosen' must hold exactly one assistant message, got roles \['assistant', 'user'\]",
        ),
        ([msg("user", 3)], [msg("user", "u")], r"chosen\[0\] must be a message"),
    ],
)
def test_implicit_prompt_errors(chosen, rejected, message):
    with pytest.raises(DataError, match=message):
        parse_pair({"chosen": chosen, "rejected": rejected}, "row 0")


def test_ultrafeedback_like_jsonl_file(tmp_path):
    path = tmp_path / "uf.jsonl"
    rows = [
        {
            "prompt_id": "x",
            "chosen": [msg("user", f"q{i}"), msg("assistant", "good")],
            "rejected": [msg("user", f"q{i}"), msg("assistant", "bad")],
            "score_chosen": 8.0,
        }
        for i in range(3)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    pairs = load_pairs(str(path))
    assert [p.prompt for p in pairs] == [(("user", f"q{i}"),) for i in range(3)] and pairs[0].chosen == "good"
