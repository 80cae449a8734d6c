"""Answer extraction and degeneracy detection on real-looking outputs."""

import pytest

from innerpo.star.extract import extract_answer, judge, repeated_tail, script_share
from innerpo.star.schema import Question

MC = Question("q", "Where do you keep milk?", ("garden", "fridge", "oven", "car"), "B")
YO = Question("y", "Níbo ni a ti ń pa wàrà mọ́?", ("ọgbà", "fìríìjì", "ààrò", "ọkọ̀"), "B", language="YO_NG")
AR = Question("a", "أين تحفظ الحليب؟", ("حديقة", "ثلاجة", "فرن", "سيارة"), "B", language="AR_XY")
NUM = Question("n", "How many?", (), "1234")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Milk goes bad when warm, so it is kept cold. The answer is (B).", "B"),
        ("Milk spoils. So the answer is b) fridge", "B"),
        ("First I thought the answer is (A), but milk needs cold. The correct answer is (B).", "B"),
        ("Answer: B", "B"),
        ("Milk must stay cold.\n**B**", "B"),
        ("Cold keeps milk fresh. The answer is fridge.", "B"),
        ("the answer is **(B)** because fridges are cold", "B"),
        ("The answer is a fridge, not a garden.", None),  # 'a' is an article; two options named
        ("I am not sure what to say here.", None),
        ("The answer is (F).", None),  # not an option
    ],
)
def test_multiple_choice_extraction(text, expected):
    assert extract_answer(text, MC) == expected


def test_localized_phrases_and_labels():
    assert extract_answer("Wàrà gbọdọ̀ tutù. Ìdáhùn náà ni (B).", YO) == "B"
    assert extract_answer("الحليب يحتاج إلى البرودة. الإجابة هي (ب)", AR) == "B"
    assert extract_answer("牛奶需要冷藏。答案是 B", MC) == "B"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("She sells 16 - 3 - 4 = 9 eggs, 9 * 2 = $18.\n#### 18", "18"),
        ("So the total is \\boxed{1,234}.", "1234"),
        ("The answer is 1234.", "1234"),
        ("The answer is $1,234.00", "1234"),
        ("First 12, then 20, finally 7", "7"),
        ("no digits at all", None),
        ("The answer is -3.5", "-3.5"),
    ],
)
def test_number_extraction(text, expected):
    assert extract_answer(text, NUM) == expected


def test_repetition_to_the_length_limit_is_degenerate():
    looped = "Ones: 7 + 5 = 12. " + "the the the " * 30
    assert repeated_tail(looped)
    j = judge(looped, MC, hit_length_limit=True)
    assert "repetition" in j.flags and j.degenerate
    # The same text that ended on its own is not a repetition failure (but has no answer).
    assert "repetition" not in judge(looped, MC, hit_length_limit=False).flags
    assert repeated_tail("1111111111111111")
    assert not repeated_tail("Ones: 7 + 5 = 12, write 2, carry 1. Tens: 3 + 4 + 1 = 8.")


def test_no_answer_and_wrong_script():
    assert judge("I do not know.", MC, False).flags == ["no_answer"]
    ok = judge("Wàrà gbọdọ̀ tutù, nítorí náà a fi sínú fìríìjì. Ìdáhùn náà ni (B).", YO, False)
    assert ok.answer == "B" and not ok.flags
    # The Yoruba failure mode: the model drifts into another script.
    drift = judge("牛奶需要冷藏牛奶需要冷藏牛奶需要冷藏。答案是 B", YO, False)
    assert drift.answer == "B" and "wrong_script" in drift.flags
    # Asked to reason in English, English text is the right script for Yoruba and Arabic questions.
    assert not judge("Milk needs the cold. The answer is (B).", AR, False, reasoning="english").flags
    assert "wrong_script" in judge("Milk needs the cold. The answer is (B).", AR, False).flags
    assert script_share("abc", "LATIN") == 1.0 and script_share("123", "ARABIC") == 1.0
