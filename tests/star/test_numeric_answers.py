"""GSM8K-style numeric answers compared as values (math-verify), the regex as fallback."""

import pytest

from innerpo.star import extract
from innerpo.star.extract import extract_number, judge
from innerpo.star.questions import canonical_number
from innerpo.star.schema import Question


@pytest.mark.parametrize(
    "text, gold",
    [
        ("She drinks 3/4 of the jug. The answer is 3/4.", "0.75"),  # fraction vs decimal gold
        ("Each gets \\frac{3}{4} of a pizza. The answer is \\frac{3}{4}", "0.75"),
        ("They sold 600 + 400 = 1,000 tickets. The answer is 1,000.", "1000"),  # commas
        ("The toy costs $5.", "5"),  # units
        ("So he pays 5 dollars in all.", "5"),
        ("Half of the cake is left: \\frac{1}{2}", "0.5"),  # LaTeX
        ("3 + 4 = 7, doubled is \\boxed{12}. Check: 7 is the half.", "12"),  # boxed beats a later number
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
        ("The answer is 14. Earlier I wrote 2 + 2 = 5 by mistake", "14"),  # the answer statement wins
    ],
)
def test_numeric_answer_matches_gold_as_a_value(text, gold):
    q = Question("n", "How many?", (), canonical_number(gold))
    result = judge(text, q, hit_length_limit=False)
    assert result.answer == q.answer and not result.flags


def test_no_number_is_no_answer_and_wrong_is_wrong():
    q = Question("n", "How many?", (), "5")
    assert judge("I cannot tell from the question.", q, False).flags == ["no_answer"]
    assert judge("The answer is \\frac{1}{2}.", q, False).answer == "0.5"


def test_regex_fallback_when_math_verify_finds_nothing(monkeypatch):
    monkeypatch.setattr(extract, "_math_verify_number", lambda text: None)
    assert extract_number("Natalia sold 48/2 = 24 clips.\n#### 72") == "72"
    assert extract_number("The answer is $1,234.") == "1234"
    assert extract_number("nothing here") is None
