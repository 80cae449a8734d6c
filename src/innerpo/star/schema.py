"""The STaR question schema every source is read into (innerpo.star.questions) and the
built-in task builds (innerpo.star.synthetic)."""

from __future__ import annotations

from dataclasses import dataclass

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    options: tuple[str, ...]  # () for free-form (numeric) questions
    answer: str  # an option letter, or a canonical number ("1234", "-3.5")
    language: str = "en"
    subject: str = ""

    @property
    def labels(self) -> str:
        return LETTERS[: len(self.options)]

    @property
    def is_multiple_choice(self) -> bool:
        return bool(self.options)

    def to_dict(self) -> dict:
        return {
            "qid": self.qid,
            "question": self.question,
            "options": list(self.options),
            "answer": self.answer,
            "language": self.language,
            "subject": self.subject,
        }
