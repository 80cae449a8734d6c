"""Scoring a model on every held-out set (innerpo.star.question_sets), once per iteration.

Per set, each with a 95% interval over its questions:
- `rationale`: one greedy rationale per question (few-shot prompt), right when its
  extracted answer is the gold one and it is not degenerate (Wilson interval);
- `direct` (multiple choice only): option-label likelihood (innerpo.star.evaluate);
- with --star.eval_samples n > 0, n rationales sampled per question (temperature and
  top_p as for training data; the draw fixed by --star.seed and the iteration):
  `pass@1`, `pass@k` for each k of --star.eval_k (default k = n) and `maj@n`
  (innerpo.star.estimators; normal-approximation intervals, Wilson for 0/1 scores).
Each set's questions go to `<iter>/eval-<set>.jsonl`, one row per question: the judged
greedy rationale, `direct_correct`, and the sampled answers with the question's scores,
which `innerpo report` pools over seeds.
"""

from __future__ import annotations

from pathlib import Path

from innerpo.io import write_jsonl
from innerpo.star import prompts
from innerpo.star.config import StarRunConfig
from innerpo.star.decoding import gen_settings, pair_tokenizer
from innerpo.star.estimators import maj_at_n, mean_interval, pass_at_k
from innerpo.star.evaluate import Accuracy, direct_correct, judge_samples, rationale_accuracy
from innerpo.star.schema import Question

EVAL_SAMPLE_SEED = 500
"""Offset of the held-out sampling seed (seed · 1000 + offset + iteration), apart from the training draws'."""


def eval_file(it_dir: Path, name: str) -> Path:
    return Path(it_dir) / f"eval-{name}.jsonl"


def sample_score_names(s) -> list[str]:
    """`pass@1`, `pass@k` for the other k, `maj@n` (none without --star.eval_samples)."""
    n = s.eval_samples
    if not n:
        return []
    ks = [k for k in (s.eval_k or [n]) if k != 1]
    return ["pass@1", *(f"pass@{k}" for k in ks), f"maj@{n}"]


def question_scores(s, judged, gold: str) -> dict[str, float]:
    """One question's sampled scores by name (sample_score_names)."""
    n, c = len(judged), sum(j.correct for j in judged)
    out = {}
    for name in sample_score_names(s):
        kind, k = name.split("@")
        if kind == "pass":
            out[name] = pass_at_k(n, c, int(k))
        else:
            out[name] = maj_at_n([j.answer if not j.flags else None for j in judged], gold)
    return out


def evaluate(
    model,
    tok,
    generator,
    sets: dict[str, list[Question]],
    ex,
    cfg: StarRunConfig,
    preamble: str = "",
    it_dir: Path | None = None,
    iteration: int = 0,
) -> dict[str, dict]:
    """{set name: its metrics}; the per-question rows written to `it_dir` when given."""
    return {
        name: evaluate_set(
            model, tok, generator, qs, ex, cfg, preamble, eval_file(it_dir, name) if it_dir else None, iteration
        )
        for name, qs in sets.items()
    }


def evaluate_set(
    model,
    tok,
    generator,
    questions: list[Question],
    ex,
    cfg: StarRunConfig,
    preamble: str = "",
    save_to: Path | None = None,
    iteration: int = 0,
) -> dict:
    s = cfg.star
    pair_tok = pair_tokenizer(cfg, tok)
    ids = [
        prompts.prompt_ids(pair_tok, prompts.messages(ex, q, s.few_shot, preamble=preamble, reasoning=s.reasoning))
        for q in questions
    ]
    greedy = judge_samples(
        questions, generator.generate(ids, 1, gen_settings(s, pair_tok, s.seed, greedy=True)), s.reasoning
    )
    rows = [js[0].record(iteration, 0) for js in greedy]
    out = {
        **rationale_accuracy(greedy).as_dict("rationale"),
        "eval_degenerate": sum(bool(js[0].flags) for js in greedy),
    }
    if s.direct_eval:
        zero_shot = [
            prompts.prompt_ids(pair_tok, prompts.messages(ex, q, 0, preamble=preamble, reasoning=s.reasoning))
            for q in questions
        ]
        direct = direct_correct(model, tok, zero_shot, questions, cfg.data.batch_size)
        if direct is not None:
            out.update(Accuracy(sum(direct), len(direct)).as_dict("direct"))
            for row, d in zip(rows, direct):
                row["direct_correct"] = d
    if s.eval_samples:
        settings = gen_settings(s, pair_tok, s.seed * 1000 + EVAL_SAMPLE_SEED + iteration)
        sampled = judge_samples(
            questions, generator.generate(ids, s.eval_samples, settings), s.reasoning, "eval_sample"
        )
        for row, js, q in zip(rows, sampled, questions):
            row["sample_answers"] = [j.answer for j in js]
            row["samples_correct"] = sum(j.correct for j in js)
            row["scores"] = question_scores(s, js, q.answer)
        for name in sample_score_names(s):
            scores = [row["scores"][name] for row in rows]
            if all(x in (0.0, 1.0) for x in scores):
                out.update(Accuracy(int(sum(scores)), len(scores)).as_dict(name))
            else:
                mean, lo, hi = mean_interval(scores)
                out.update(
                    {f"{name}_accuracy": mean, f"{name}_ci_low": lo, f"{name}_ci_high": hi, f"{name}_n": len(scores)}
                )
    if save_to is not None:
        write_jsonl(save_to, rows)
    return out
