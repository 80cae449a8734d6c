"""pass@k, maj@n and the interval over questions, against values worked out by hand."""

import math

import pytest

from innerpo.star.build import Judged
from innerpo.star.config import StarConfig
from innerpo.star.estimators import maj_at_n, mean_interval, pass_at_k
from innerpo.star.heldout import question_scores, sample_score_names
from innerpo.star.schema import Question


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (4, 1, 1, 0.25),  # pass@1 is c/n
        (3, 0, 2, 0.0),  # nothing correct
        (4, 3, 2, 1.0),  # n - c < k: every pair of draws holds a correct one
        (4, 4, 4, 1.0),
    ],
)
def test_pass_at_k_is_chens_unbiased_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_k_grows_with_k_and_with_correct_samples():
    n = 8
    for c in range(n + 1):
        by_k = [pass_at_k(n, c, k) for k in range(1, n + 1)]
        assert by_k == sorted(by_k)
    for k in range(1, n + 1):
        by_c = [pass_at_k(n, c, k) for c in range(n + 1)]
        assert by_c == sorted(by_c) and by_c[0] == 0.0 and by_c[-1] == 1.0


def test_pass_at_k_refuses_k_above_n():
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(3, 1, 4)


@pytest.mark.parametrize(
    "answers, gold, expected",
    [
        (["7", "7", "8"], "7", 1.0),
        (["8", "8", "7", None], "7", 0.0),  # the majority is wrong
        (["7", "8", None, None], "7", 0.5),  # a tie of two, the gold among them: 1/2
        (["7", "8", "9"], "9", 1 / 3),  # a three-way tie: 1/3
        (["7", "8", "9"], "6", 0.0),  # a tie without the gold
        ([None, None], "7", 0.0),  # no extracted answer: no vote
        ([], "7", 0.0),
    ],
)
def test_maj_at_n_with_ties_and_missing_answers(answers, gold, expected):
    assert maj_at_n(answers, gold) == pytest.approx(expected)


def test_mean_interval_by_hand():
    # mean 0.5; sd = sqrt((0 + 0.0625 + 0.0625 + 0) / 3) = 0.2041241; half = 1.959964 * sd / 2
    mean, low, high = mean_interval([0.5, 0.25, 0.75, 0.5])
    assert mean == 0.5
    assert low == pytest.approx(0.5 - 0.2000370, abs=1e-6) and high == pytest.approx(0.5 + 0.2000370, abs=1e-6)
    # mean 0.6; sd = sqrt((3 * 0.16 + 2 * 0.36) / 4) = 0.5477226; half = 1.959964 * sd / sqrt(5) = 0.4800910
    assert mean_interval([1.0, 1.0, 0.0, 0.0, 1.0])[1:] == (pytest.approx(0.6 - 0.4800910, abs=1e-6), 1.0)  # clipped
    assert mean_interval([0.3]) == (0.3, 0.3, 0.3)


def test_question_scores_name_each_estimator():
    q = Question("q", "What is 2 + 2?", (), "4")
    # correct, wrong, degenerate (right answer but a flag: neither correct nor a vote), no answer
    judged = [
        Judged(q, "", "4", []),
        Judged(q, "", "5", []),
        Judged(q, "", "4", ["repetition"]),
        Judged(q, "", None, ["no_answer"]),
    ]
    s = StarConfig(eval_samples=4, eval_k=[1, 2])
    assert sample_score_names(s) == ["pass@1", "pass@2", "maj@4"]
    scores = question_scores(s, judged, "4")
    assert scores == {"pass@1": 0.25, "pass@2": pytest.approx(1 - 3 / 6), "maj@4": 0.5}
    assert sample_score_names(StarConfig(eval_samples=3)) == ["pass@1", "pass@3", "maj@3"]
    assert sample_score_names(StarConfig()) == []
