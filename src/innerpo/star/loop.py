"""The STaR loop (Zelikman et al. 2022, arXiv:2203.14465), read top to bottom.

iteration 0: score the starting model on every held-out set (in_domain and the
--star.eval_sets; innerpo.star.heldout).
iteration i = 1..N, in RUN/iter-i/:
  1. sample k rationales per training question with the latest model (generated.jsonl);
  2. judge them (extracted answer, degeneracy flags); for questions with no correct
     sample, rationalize a share `p_rationalization` of them: re-ask with the gold
     answer as a hint;
  3. build the training set from non-degenerate samples (train.jsonl): SFT rows of
     correct rationales, or (correct, incorrect) preference pairs;
  4. train through innerpo.train.loop.train (the project's one loop), from the base
     model every iteration (STaR) or from the last model (`reset_each_iteration=False`:
     the earlier adapters are merged in and that model is the reference);
  5. score every held-out set (metrics.json; per question in eval-<set>.jsonl), and
     rewrite RUN/accuracy.md, accuracy.png and summary.json.
`preload` replaces steps 1-3 of iteration 1 with a saved train.jsonl. A run directory
that already holds a run is refused, so iterations of two runs never mix.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from collections import Counter
from pathlib import Path

from innerpo.errors import ConfigError, DataError
from innerpo.io import write_atomic, write_jsonl
from innerpo.models.load import load_base, merge_adapter
from innerpo.star import build, heldout, prompts
from innerpo.star.config import StarRunConfig
from innerpo.star.decoding import gen_settings, pair_tokenizer
from innerpo.star.evaluate import judge_samples
from innerpo.star.generate import HFGenerator
from innerpo.star.report import write_summary
from innerpo.star.schema import Question
from innerpo.star.validate import check_star, training_config
from innerpo.train.environment import record as record_environment
from innerpo.train.loop import train


def run_star(cfg: StarRunConfig, make_generator=HFGenerator) -> Path:
    """Run STaR as `cfg` says; returns the run directory. `make_generator(model, tok)` gives
    the Generator (innerpo.star.generate); tests pass a scripted one."""
    s = cfg.star
    inputs = check_star(cfg)  # bad settings or data stop the run before anything is generated or written
    train_qs, sets, ex = inputs.train, inputs.sets, inputs.exemplars
    run_dir = _new_run_dir(cfg)
    write_atomic(run_dir / "star_config.json", json.dumps(dataclasses.asdict(cfg), indent=2))
    title = f"STaR {s.method or s.resolved_strategy} on {s.dataset} ({cfg.model.base_model})"
    chance = {name: _chance(qs) for name, qs in sets.items()}
    t0 = time.time()
    model, tok = load_base(cfg.model)
    record_environment(run_dir, model.device)  # the iterations' training runs record their own

    if s.mode == "prompt_eval":
        rows = []
        for preamble in [""] + [p for p in s.preambles if p]:
            row = {
                "preamble": preamble or "(none)",
                "sets": heldout.evaluate(model, tok, make_generator(model, tok), sets, ex, cfg, preamble),
            }
            rows.append(row)
            print(f"preamble {row['preamble']!r}: " + _accuracies(row))
        print(write_summary(run_dir, rows, f"prompt variants on {s.dataset}", key="preamble"))
        return run_dir

    (run_dir / "iter-0").mkdir()
    sets_0 = heldout.evaluate(model, tok, make_generator(model, tok), sets, ex, cfg, it_dir=run_dir / "iter-0")
    rows = [{"iteration": 0, "sets": sets_0, "elapsed_s": round(time.time() - t0, 1)}]
    _write_metrics(run_dir / "iter-0", rows[0])
    print(write_summary(run_dir, rows, title, chance=chance))
    merged: list[str] = list(cfg.model.init_adapter)  # adapters the next training starts from
    for it in range(1, s.iterations + 1):
        it_dir = run_dir / f"iter-{it}"
        it_dir.mkdir()
        if it == 1 and s.preload:
            train_path = it_dir / "train.jsonl"
            shutil.copyfile(s.preload, train_path)
            stats = {
                "preloaded_from": str(s.preload),
                "train_rows": sum(1 for line in train_path.read_text().splitlines() if line.strip()),
            }
        else:
            stats = generate_training_data(tok, make_generator(model, tok), train_qs, ex, cfg, it, it_dir)
        del model
        if stats["train_rows"] == 0:
            raise DataError(
                f"iteration {it}: no training data (no correct "
                f"rationale{' or pair' if s.resolved_strategy == 'dpo' else ''}); see {it_dir / 'generated.jsonl'}"
            )
        adapter = train(training_config(cfg, it, it_dir, merged), evaluate=False) / "adapter"
        model, tok = load_base(dataclasses.replace(cfg.model, init_adapter=merged))
        model = merge_adapter(model, adapter)
        if not s.reset_each_iteration:
            merged = merged + [str(adapter)]
        scores = heldout.evaluate(model, tok, make_generator(model, tok), sets, ex, cfg, it_dir=it_dir, iteration=it)
        row = {"iteration": it, **stats, "sets": scores, "elapsed_s": round(time.time() - t0, 1)}
        _write_metrics(it_dir, row)
        rows.append(row)
        print(write_summary(run_dir, rows, title, chance=chance))
    print(f"STaR run in {run_dir} ({time.time() - t0:.0f} s)")
    return run_dir


def generate_training_data(
    tok, generator, questions: list[Question], ex, cfg: StarRunConfig, it: int, it_dir: Path
) -> dict:
    """Steps 1-3: sample, judge, rationalize, build; writes generated.jsonl and train.jsonl."""
    s = cfg.star
    pair_tok = pair_tokenizer(cfg, tok)
    settings = gen_settings(s, pair_tok, seed=s.seed * 1000 + it)
    ids = [prompts.prompt_ids(pair_tok, prompts.messages(ex, q, s.few_shot, reasoning=s.reasoning)) for q in questions]
    judged = judge_samples(questions, generator.generate(ids, s.samples_per_question, settings), s.reasoning)
    by_q = {q.qid: list(js) for q, js in zip(questions, judged)}  # samples, then any rationalization
    unsolved = [q for q, js in zip(questions, judged) if not any(j.correct for j in js)]
    chosen = rationalization_draw(unsolved, s.p_rationalization, s.seed, it)
    unsolved = [q for q, pick in zip(unsolved, chosen) if pick]
    rationalized = 0
    if unsolved:
        ids = [
            prompts.prompt_ids(pair_tok, prompts.messages(ex, q, s.few_shot, hint=True, reasoning=s.reasoning))
            for q in unsolved
        ]
        for q, (raw,) in zip(
            unsolved,
            judge_samples(
                unsolved,
                generator.generate(ids, 1, gen_settings(s, pair_tok, s.seed * 1000 + it, greedy=True)),
                s.reasoning,
                "rationalization",
            ),
        ):
            text = build.strip_hint(raw.text)
            if text is None:
                raw.flags = raw.flags + ["mentions_hint"]
            else:
                raw.text = text
            by_q[q.qid].append(raw)
            rationalized += raw.correct
    records = [j.record(it, i) for js in by_q.values() for i, j in enumerate(js)]
    write_jsonl(it_dir / "generated.jsonl", records)

    def prompt_of(q: Question):
        return prompts.messages(ex, q, 0, reasoning=s.reasoning)

    rows = (
        build.sft_rows(by_q, prompt_of)
        if s.resolved_strategy == "sft"
        else build.dpo_rows(by_q, prompt_of, s.pairs_per_question)
    )
    write_jsonl(it_dir / "train.jsonl", rows)
    samples = [j for js in judged for j in js]
    flags = Counter(f for j in samples for f in j.flags)
    stats = {
        "train_rows": len(rows),
        "correct_samples": sum(j.correct for j in samples),
        "samples": len(samples),
        "questions_solved": sum(any(j.correct for j in js) for js in judged),
        "rationalization_asked": len(unsolved),
        "rationalized": rationalized,
        **{f"degenerate/{k}": v for k, v in sorted(flags.items())},
        "degenerate_samples": sum(bool(j.flags) for j in samples),
    }
    print(
        f"iteration {it}: {stats['correct_samples']}/{len(samples)} samples correct, "
        f"{stats['questions_solved']}/{len(questions)} questions solved, "
        f"{rationalized} rationalized, {stats['degenerate_samples']} degenerate, {len(rows)} training rows"
    )
    return stats


def rationalization_draw(unsolved: list[Question], p: float, seed: int, it: int) -> list[bool]:
    """Which unsolved questions are re-asked with the hint: each with probability `p`
    (ezelikman/STaR's p_rationalization), drawn in question order from (seed, iteration)."""
    rng = random.Random(f"rationalize-{seed}-{it}")
    return [rng.random() < p for _ in unsolved]


def _new_run_dir(cfg: StarRunConfig) -> Path:
    name = cfg.star.method or cfg.star.resolved_strategy
    path = Path(cfg.output_dir or f"outputs/star-{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if path.exists() and any(p.name == "star_config.json" or p.name.startswith("iter-") for p in path.iterdir()):
        raise ConfigError(
            f"--output_dir={path} already holds a STaR run; choose another --output_dir, so two "
            "runs' iterations never mix"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def _chance(questions: list[Question]) -> float | None:
    """Expected accuracy of guessing an option uniformly (None for free-form questions)."""
    if not questions or not all(q.options for q in questions):
        return None
    return sum(1 / len(q.options) for q in questions) / len(questions)


def _accuracies(row: dict) -> str:
    return ", ".join(f"{name} {m['rationale_accuracy']:.3f}" for name, m in row["sets"].items())


def _write_metrics(it_dir: Path, row: dict) -> None:
    write_atomic(it_dir / "metrics.json", json.dumps(row, indent=2))
