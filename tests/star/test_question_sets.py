"""Held-out sets: names, disjointness from training, the same draw for every seed, refusals."""

import json

import pytest

from innerpo.errors import ConfigError, DataError
from innerpo.star.config import StarConfig
from innerpo.star.question_sets import held_out, parse_eval_sets, training_and_in_domain


def _gsm8k(path, n):
    path.write_text(
        "".join(
            json.dumps({"question": f"Q{i}: 2 * {i}?", "answer": f"2 * {i} = {2 * i}\n#### {2 * i}"}) + "\n"
            for i in range(n)
        )
    )
    return path


def test_names_are_derived_or_given_and_the_training_set_is_skipped(tmp_path, capsys):
    gsm = _gsm8k(tmp_path / "gsm8k_test.jsonl", 12)
    sets = parse_eval_sets(StarConfig(eval_sets=["synthetic:add1", "synthetic:add2", f"grade={gsm}", str(gsm)]))
    assert [(e.name, e.source) for e in sets] == [
        ("add2", "synthetic:add2"),
        ("grade", str(gsm)),
        ("gsm8k_test", str(gsm)),
    ]
    assert "synthetic:add1 is --star.dataset, scored as in_domain" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="two held-out sets are named 'add2'"):
        parse_eval_sets(StarConfig(eval_sets=["synthetic:add2", "add2=synthetic:add3"]))
    with pytest.raises(ConfigError, match="named 'in_domain'"):
        parse_eval_sets(StarConfig(eval_sets=["in_domain=synthetic:add3"]))


def test_mmlu_subjects_after_the_directory(tmp_path):
    for subject in ("anatomy", "virology"):
        (tmp_path / "mmlu" / "test").mkdir(parents=True, exist_ok=True)
        (tmp_path / "mmlu" / "test" / f"{subject}_test.csv").write_text(f"{subject} q?,a,b,c,d,A\n")
    s = StarConfig(eval_sets=[f"{tmp_path / 'mmlu'}:anatomy,virology"], num_eval_questions=None)
    sets = parse_eval_sets(s)
    assert [(e.name, e.subjects) for e in sets] == [("anatomy+virology", ("anatomy", "virology"))]
    qs = held_out(s, sets)["anatomy+virology"]
    assert sorted(q.subject for q in qs) == ["anatomy", "virology"]


def test_held_out_draw_depends_on_eval_seed_not_seed(tmp_path):
    gsm = _gsm8k(tmp_path / "gsm.jsonl", 30)
    draws = {}
    for seed in (0, 1):
        s = StarConfig(seed=seed, eval_seed=7, num_eval_questions=5, eval_sets=["synthetic:add3", str(gsm)])
        train, in_domain = training_and_in_domain(s)
        sets = held_out(s, parse_eval_sets(s))
        draws[seed] = (
            [q.qid for q in in_domain],
            {k: [q.qid for q in v] for k, v in sets.items()},
            [q.qid for q in train],
        )
        assert not {q.question for q in train} & {q.question for q in in_domain}
        assert len(sets["add3"]) == len(sets["gsm"]) == 5 and sets["gsm"][0].answer.isdigit()
    assert draws[0][:2] == draws[1][:2]  # the same held-out questions for every seed
    assert draws[0][2] != draws[1][2]  # the training questions do follow --star.seed
    other = StarConfig(eval_seed=8, num_eval_questions=5)
    assert [q.qid for q in training_and_in_domain(other)[1]] != draws[0][0]


def test_a_bad_eval_set_is_refused_naming_it(tmp_path):
    with pytest.raises(DataError, match="question source not found"):
        s = StarConfig(eval_sets=[str(tmp_path / "missing.jsonl")])
        held_out(s, parse_eval_sets(s))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q?", "answer": "x"}\n')
    s = StarConfig(eval_sets=[str(bad)])
    with pytest.raises(DataError, match=r"bad.jsonl, line 1: gold answer 'x' is not a number"):
        held_out(s, parse_eval_sets(s))


def test_add3_draws_only_what_it_needs_from_its_split():
    from innerpo.star import synthetic

    qs = synthetic.questions("test", 20, 3, "add3")
    assert [q.qid for q in qs] == [q.qid for q in synthetic.questions("test", 20, 3, "add3")]
    pairs = [tuple(map(int, q.qid.rsplit("-", 1)[1].split("+"))) for q in qs]
    assert len(set(pairs)) == 20 and all(synthetic._split_of(a, b) == "test" for a, b in pairs)
    assert all(100 <= a <= 999 and 100 <= b <= 999 for a, b in pairs)
