"""Training data from judged rationales: SFT examples or preference pairs.

Input: `Judged` samples (a question, the generated text, its extracted answer, flags,
and whether it came from rationalization). Only non-degenerate samples are ever used.

- SFT (the STaR paper's filtered rationales, the research group's "reinforce"): one
  prompt/completion row per distinct correct rationale, label true (TRL's unpaired
  format, which `innerpo.methods.sft_unpaired` trains on with the `sft` loss).
- DPO (the group's "dpo"; with `--method.losses dpo sft` Iterative RPO, Pang et al.
  2024, arXiv:2404.19733): per question, up to `pairs_per_question` pairs of a correct
  (chosen) and an incorrect (rejected) rationale, distinct texts, correct and incorrect
  ones taken in sample order (pairs (0,0), (0,1), (1,0), (1,1), ...).

The prompt of every row is the hint-free, zero-shot prompt (innerpo.star.prompts); a
rationalized sample's text has the hint mark removed, and a rationale that talks about
the hint is dropped (it would teach the model to cite a hint it will not have).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product

from innerpo.star.prompts import HINT_MARK
from innerpo.star.schema import Question

_HINT_TALK = re.compile(r"hint|\(correct\)|marked correct|labeled correct|labelled correct", re.IGNORECASE)


@dataclass
class Judged:
    question: Question
    text: str
    answer: str | None
    flags: list[str]
    source: str = "sample"  # or "rationalization"
    finish: str = "eos"
    n_tokens: int = 0

    @property
    def correct(self) -> bool:
        return not self.flags and self.answer == self.question.answer

    @property
    def incorrect(self) -> bool:
        return not self.flags and self.answer != self.question.answer

    def record(self, iteration: int, index: int) -> dict:
        return {
            "iteration": iteration,
            "qid": self.question.qid,
            "index": index,
            "source": self.source,
            "text": self.text,
            "answer": self.answer,
            "gold": self.question.answer,
            "correct": self.correct,
            "flags": self.flags,
            "finish": self.finish,
            "n_tokens": self.n_tokens,
            "question": self.question.to_dict(),
        }


def strip_hint(text: str) -> str | None:
    """A rationalization's text without the hint mark; None when it talks about the hint."""
    cleaned = text.replace(HINT_MARK, "").replace(HINT_MARK.strip(), "")
    return None if _HINT_TALK.search(cleaned) else cleaned.strip()


def _distinct(texts: list[str]) -> list[str]:
    seen, out = set(), []
    for t in texts:
        key = " ".join(t.split())
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def sft_rows(by_question: dict[str, list[Judged]], prompt_of) -> list[dict]:
    """prompt/completion/label rows: each question's distinct correct rationales."""
    rows = []
    for qid, samples in by_question.items():
        for text in _distinct([s.text for s in samples if s.correct]):
            rows.append({"prompt": prompt_of(samples[0].question), "completion": text, "label": True, "qid": qid})
    return rows


def dpo_rows(by_question: dict[str, list[Judged]], prompt_of, pairs_per_question: int) -> list[dict]:
    """prompt/chosen/rejected rows: correct vs incorrect rationales of the same question."""
    rows = []
    for qid, samples in by_question.items():
        good = _distinct([s.text for s in samples if s.correct])
        bad = _distinct([s.text for s in samples if s.incorrect])
        # Distinct (correct, incorrect) index pairs, earliest samples first: (0,0), (0,1), (1,0), (1,1), ...
        combos = sorted(product(range(len(good)), range(len(bad))), key=lambda gb: (max(gb), gb))
        for g, b in combos[:pairs_per_question]:
            chosen, rejected = good[g], bad[b]
            rows.append({"prompt": prompt_of(samples[0].question), "chosen": chosen, "rejected": rejected, "qid": qid})
    return rows
