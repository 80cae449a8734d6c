"""Answer extraction and degeneracy detection for generated rationales.

Extraction, per task kind:
- multiple choice: the letter after "the answer is" (or a localized equivalent, a
  final "Answer: X", or a bold/parenthesized letter on the last line), taking the last
  such statement; localized option labels (Arabic أ ب ج د, ...) map to A, B, C, D; a
  final sentence that names exactly one option's text counts as that option;
- numeric: the last answer statement (`\\boxed{..}`, `#### N`, "the answer is ..."), read
  to the end of its sentence, else the whole text, is parsed by math-verify (LaTeX such
  as `\\frac{1}{2}`, fractions `3/4`, `1,000`, `$5`, `5 dollars`; else its last number)
  and the value written canonically (`3/4` → `0.75`, like the gold `0.75`), so answers
  are compared as values; where math-verify finds no number, the regex fallback takes
  the statement's (or the text's) last number.

Degeneracy flags (an output with any of them is never training data, and is counted):
- `repetition`: the output ran to the length limit and its tail is one token or
  n-gram repeated (a period of at most 40 characters, at least 4 times);
- `no_answer`: no answer could be extracted;
- `wrong_script`: under half of the output's letters are in the script expected for
  the language (Latin for English and Yoruba, Arabic for Arabic, ...): the failure seen
  when a small model answers a Yoruba question in another script or in symbol soup.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from innerpo.star.questions import canonical_number
from innerpo.star.schema import LETTERS, Question

# "the answer is" in a few languages (lower case; matched case-insensitively).
ANSWER_PHRASES = [
    "the answer is",
    "the correct answer is",
    "answer is",
    "answer:",
    "la réponse est",
    "la respuesta es",
    "die antwort ist",
    "a resposta é",
    "la risposta è",
    "ìdáhùn náà ni",
    "idahun naa ni",
    "ìdáhùn ni",
    "jibu ni",
    "jibu sahihi ni",
    "答案是",
    "答案：",
    "答案:",
    "الإجابة هي",
    "الجواب هو",
    "उत्तर है",
    "정답은",
    "答えは",
]
LOCAL_LABELS = {
    "أ": "A",
    "ب": "B",
    "ج": "C",
    "د": "D",
    "ه": "E",
    "а": "A",
    "б": "B",
    "в": "C",
    "г": "D",
    "甲": "A",
    "乙": "B",
    "丙": "C",
    "丁": "D",
}
SCRIPT_OF_LANGUAGE = {
    "ar": "ARABIC",
    "fa": "ARABIC",
    "ur": "ARABIC",
    "zh": "CJK",
    "ja": "CJK",
    "ko": "HANGUL",
    "hi": "DEVANAGARI",
    "bn": "BENGALI",
    "ru": "CYRILLIC",
    "uk": "CYRILLIC",
    "el": "GREEK",
    "he": "HEBREW",
}
_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?"


@dataclass
class Extraction:
    answer: str | None
    flags: list[str] = field(default_factory=list)

    @property
    def degenerate(self) -> bool:
        return bool(self.flags)


def _label(token: str, n: int) -> str | None:
    token = LOCAL_LABELS.get(token, token).upper()
    return token if len(token) == 1 and token in LETTERS[:n] else None


_LOCAL = "".join(LOCAL_LABELS)
_LETTER_PATTERNS = [
    re.compile(r"\s*(?:option\s*)?\**\s*[\(\[]\s*([A-Za-z" + _LOCAL + r"])\s*[\)\]]"),  # (B), [b], **(B)**
    re.compile(r"\s*(?:option\s*)?[\*\"']*\s*([A-Z" + _LOCAL + r"])(?!\w)"),  # B, **B**, "B"
    re.compile(r"\s*([a-j])\)"),  # b)
]


def _letter_at(tail: str, n: int) -> str | None:
    """The option letter a statement like "the answer is" goes on to name, if any."""
    for pattern in _LETTER_PATTERNS:
        hit = pattern.match(tail)
        if hit and _label(hit.group(1), n):
            return _label(hit.group(1), n)
    return None


def extract_choice(text: str, q: Question) -> str | None:
    n = len(q.options)
    best = None
    for phrase in ANSWER_PHRASES:
        for m in re.finditer(re.escape(phrase), text, flags=re.IGNORECASE):
            tail = text[m.end() : m.end() + 40]
            label = _letter_at(tail, n)
            if label is None:  # "the answer is 82" / "the answer is bank": match an option's text
                label = _option_named(tail, q)
            if label is not None and (best is None or m.start() > best[0]):
                best = (m.start(), label)
    if best is not None:
        return best[1]
    last = text.strip().splitlines()[-1] if text.strip() else ""
    marked = re.findall(r"[\(\*]([A-J])[\)\*]", last)
    if marked and _label(marked[-1], n):
        return _label(marked[-1], n)
    return _option_named(last, q)


def _option_named(text: str, q: Question) -> str | None:
    """The one option whose text appears in `text` as a whole word (None if zero or several)."""
    low = text.lower()
    hits = [
        label
        for label, opt in zip(LETTERS, q.options)
        if re.search(r"(?<!\w)" + re.escape(opt.lower()) + r"(?!\w)", low)
    ]
    return hits[0] if len(hits) == 1 else None


_STATEMENT = re.compile(r"\\boxed\{|####|answer is[:\s]*", re.IGNORECASE)


def extract_number(text: str) -> str | None:
    """A numeric answer written canonically (innerpo.star.questions.canonical_number), or None.

    The last answer statement (`\\boxed{`, `####`, "answer is") wins, read up to the end of
    its sentence or line; without one (or with nothing numeric in it), the whole text."""
    statements = list(_STATEMENT.finditer(text))
    scopes = [text]
    if statements:
        last = statements[-1]
        start = last.start() if last.group(0).startswith("\\") else last.end()
        scopes.insert(0, re.split(r"\n|\.(?:\s|$)", text[start:], maxsplit=1)[0])
    for scope in scopes:
        for read in (_math_verify_number, _regex_number):
            value = read(scope)
            if value is not None:
                return value
    return None


def _math_verify_number(text: str) -> str | None:
    """The first real number math-verify extracts from `text` (LaTeX first, then plain
    expressions), written canonically; None when it finds none."""
    import logging

    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    # No timeout: math-verify's is a SIGALRM handler, which only the main thread may set, and
    # a rationale is at most --star.max_new_tokens long. Its one notice saying so is dropped.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    for value in parse(text, [LatexExtractionConfig(), ExprExtractionConfig()], parsing_timeout=None):
        if isinstance(value, str):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):  # a symbol, an interval, a complex number: not a numeric answer
            continue
        return canonical_number(repr(number))
    return None


def _regex_number(text: str) -> str | None:
    for pattern in (
        r"\\boxed\{\s*(" + _NUMBER + r")\s*\}",
        r"####\s*(" + _NUMBER + ")",
        r"answer is[:\s]*(" + _NUMBER + ")",
    ):
        found = re.findall(pattern, text, flags=re.IGNORECASE)
        if found:
            return canonical_number(found[-1])
    numbers = re.findall(_NUMBER, text)
    return canonical_number(numbers[-1]) if numbers else None


def extract_answer(text: str, q: Question) -> str | None:
    return extract_choice(text, q) if q.is_multiple_choice else extract_number(text)


def repeated_tail(text: str, max_period: int = 40, min_repeats: int = 4) -> bool:
    """Whether `text` ends in some string of at most `max_period` characters repeated `min_repeats` times."""
    tail = text.rstrip()
    for period in range(1, max_period + 1):
        unit = tail[-period:]
        if len(unit) == period and unit.strip() and tail.endswith(unit * min_repeats):
            return True
    return False


def script_share(text: str, script: str) -> float:
    """Share of the letters of `text` whose Unicode name starts with `script` (1.0 without letters)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 1.0
    ok = sum(
        1
        for ch in letters
        if unicodedata.name(ch, "").startswith(script)
        or (script == "CJK" and unicodedata.name(ch, "").startswith(("HIRAGANA", "KATAKANA")))
    )
    return ok / len(letters)


def expected_script(language: str, reasoning: str = "native") -> str:
    if reasoning != "native":
        return "LATIN"
    return SCRIPT_OF_LANGUAGE.get(language.lower().replace("-", "_").split("_")[0], "LATIN")


def judge(text: str, q: Question, hit_length_limit: bool, reasoning: str = "native") -> Extraction:
    """Extracted answer and degeneracy flags of one generated rationale."""
    flags = []
    if hit_length_limit and repeated_tail(text):
        flags.append("repetition")
    answer = extract_answer(text, q)
    if answer is None:
        flags.append("no_answer")
    if script_share(text, expected_script(q.language, reasoning)) < 0.5:
        flags.append("wrong_script")
    return Extraction(answer, flags)
