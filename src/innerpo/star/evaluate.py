"""Held-out accuracy: with a rationale (greedy generation) and direct (option log-likelihood).

- rationale accuracy: one greedy rationale per question from the few-shot prompt; right
  when its extracted answer is the gold one and it is not degenerate;
- direct accuracy (multiple choice only; no generation): after the zero-shot prompt and
  the assistant's opening "The answer is (", the option label whose first token has
  the highest log-probability is the model's answer (the standard MMLU-style scoring,
  one forward per question, batched);
- both with a 95% Wilson interval over questions (`wilson`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from innerpo.eval.stats import wilson_interval
from innerpo.star.build import Judged
from innerpo.star.extract import judge
from innerpo.star.schema import Question

DIRECT_OPENING = "The answer is ("


@dataclass
class Accuracy:
    correct: int
    n: int

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    def as_dict(self, name: str) -> dict:
        lo, hi = wilson_interval(self.correct, self.n)
        return {
            f"{name}_accuracy": self.value,
            f"{name}_ci_low": lo,
            f"{name}_ci_high": hi,
            f"{name}_correct": self.correct,
            f"{name}_n": self.n,
        }


def judge_samples(questions: list[Question], samples, reasoning: str, source: str = "sample") -> list[list[Judged]]:
    """Judged samples per question (samples: Generator output, one list per question)."""
    out = []
    for q, qs in zip(questions, samples):
        out.append(
            [
                Judged(
                    q,
                    s.text,
                    (e := judge(s.text, q, s.finish == "length", reasoning)).answer,
                    e.flags,
                    source,
                    s.finish,
                    s.n_tokens,
                )
                for s in qs
            ]
        )
    return out


def rationale_accuracy(judged: list[list[Judged]]) -> Accuracy:
    return Accuracy(sum(1 for js in judged if js and js[0].correct), len(judged))


@torch.inference_mode()
def direct_correct(
    model, tok, prompts: list[list[int]], questions: list[Question], batch_size: int = 16
) -> list[bool] | None:
    """Option-label scoring (see the module docstring), right or not per question; None for free-form questions."""
    if not questions or not all(q.is_multiple_choice for q in questions):
        return None
    opening = tok(DIRECT_OPENING, add_special_tokens=False)["input_ids"]
    first = {}
    for label in "ABCDEFGHIJ":
        ids = tok(label, add_special_tokens=False)["input_ids"]
        first[label] = ids[0]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = []
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = [p + opening for p in prompts[start : start + batch_size]]
            width = max(map(len, chunk))
            ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, p in enumerate(chunk):  # left padding: every row's last position is its own
                ids[r, width - len(p) :] = torch.tensor(p)
                mask[r, width - len(p) :] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = (
                model(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    position_ids=positions.to(device),
                    logits_to_keep=1,
                )
                .logits[:, -1, :]
                .float()
            )
            for r, q in enumerate(questions[start : start + batch_size]):
                scores = [logits[r, first[label]].item() for label in q.labels]
                correct.append(q.labels[max(range(len(scores)), key=scores.__getitem__)] == q.answer)
    finally:
        model.train(was_training)
    return correct
