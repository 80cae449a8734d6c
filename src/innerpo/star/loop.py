"""The STaR loop (Zelikman et al. 2022, arXiv:2203.14465), read top to bottom.

iteration 0: score the starting model on the held-out questions.
iteration i = 1..N, in RUN/iter-i/:
  1. sample k rationales per training question with the latest model (generated.jsonl);
  2. judge them (extracted answer, degeneracy flags); for questions with no correct
     sample, optionally rationalize: re-ask with the gold answer as a hint;
  3. build the training set from non-degenerate samples (train.jsonl): SFT rows of
     correct rationales, or (correct, incorrect) preference pairs;
  4. train through innerpo.train.loop.train (the project's one loop), from the base
     model every iteration (STaR) or from the last model (`reset_each_iteration=False`:
     the earlier adapters are merged in and that model is the reference);
  5. score held-out accuracy with a rationale (greedy) and direct (option likelihood)
     (metrics.json; the greedy rationales in eval.jsonl), and rewrite RUN/accuracy.md,
     accuracy.png and summary.json.
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

from innerpo.data.tokenize import PairTokenizer
from innerpo.errors import ConfigError, DataError
from innerpo.io import write_atomic
from innerpo.methods.config import MethodConfig
from innerpo.models.load import load_base, merge_adapter
from innerpo.star import build, prompts
from innerpo.star.config import StarConfig, StarRunConfig
from innerpo.star.evaluate import direct_accuracy, judge_samples, rationale_accuracy
from innerpo.star.generate import GenSettings, HFGenerator
from innerpo.star.questions import load_questions
from innerpo.star.report import write_summary
from innerpo.star.schema import Question
from innerpo.train.config import TrainConfig
from innerpo.train.loop import train


def run_star(cfg: StarRunConfig, make_generator=HFGenerator) -> Path:
    """Run STaR as `cfg` says; returns the run directory. `make_generator(model, tok)` gives
    the Generator (innerpo.star.generate); tests pass a scripted one."""
    s = cfg.star
    _check(cfg)
    train_qs, eval_qs, ex = _questions(s)  # bad data stops the run before anything is written
    run_dir = _new_run_dir(cfg)
    write_atomic(run_dir / "star_config.json", json.dumps(dataclasses.asdict(cfg), indent=2))
    title = f"STaR {s.strategy} on {s.dataset} ({cfg.model.base_model})"
    chance = sum(1 / len(q.options) for q in eval_qs) / len(eval_qs) if all(q.options for q in eval_qs) else None
    t0 = time.time()

    if s.mode == "prompt_eval":
        model, tok = load_base(cfg.model)
        rows = []
        for preamble in [""] + [p for p in s.preambles if p]:
            row = {
                "preamble": preamble or "(none)",
                **evaluate(model, tok, make_generator(model, tok), eval_qs, ex, cfg, preamble),
            }
            rows.append(row)
            print(f"preamble {row['preamble']!r}: rationale accuracy {row['rationale_accuracy']:.3f}")
        print(write_summary(run_dir, rows, f"prompt variants on {s.dataset}", key="preamble"))
        return run_dir

    model, tok = load_base(cfg.model)
    (run_dir / "iter-0").mkdir()
    rows = [
        {
            "iteration": 0,
            **evaluate(
                model, tok, make_generator(model, tok), eval_qs, ex, cfg, save_to=run_dir / "iter-0" / "eval.jsonl"
            ),
            "elapsed_s": round(time.time() - t0, 1),
        }
    ]
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
                f"iteration {it}: no training data (no correct rationale{' or pair' if s.strategy == 'dpo' else ''}); see {it_dir / 'generated.jsonl'}"
            )
        adapter = train(_train_config(cfg, it, it_dir, merged), evaluate=False) / "adapter"
        model, tok = load_base(dataclasses.replace(cfg.model, init_adapter=merged))
        model = merge_adapter(model, adapter)
        if not s.reset_each_iteration:
            merged = merged + [str(adapter)]
        row = {
            "iteration": it,
            **stats,
            **evaluate(
                model, tok, make_generator(model, tok), eval_qs, ex, cfg, save_to=it_dir / "eval.jsonl", iteration=it
            ),
            "elapsed_s": round(time.time() - t0, 1),
        }
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
    pair_tok = _pair_tok(cfg, tok)
    settings = _gen_settings(s, pair_tok, seed=s.seed * 1000 + it)
    ids = [prompts.prompt_ids(pair_tok, prompts.messages(ex, q, s.few_shot, reasoning=s.reasoning)) for q in questions]
    judged = judge_samples(questions, generator.generate(ids, s.samples_per_question, settings), s.reasoning)
    by_q = {q.qid: list(js) for q, js in zip(questions, judged)}  # samples, then any rationalization
    unsolved = [q for q, js in zip(questions, judged) if not any(j.correct for j in js)]
    rationalized = 0
    if s.rationalize and unsolved:
        ids = [
            prompts.prompt_ids(pair_tok, prompts.messages(ex, q, s.few_shot, hint=True, reasoning=s.reasoning))
            for q in unsolved
        ]
        for q, (raw,) in zip(
            unsolved,
            judge_samples(
                unsolved,
                generator.generate(ids, 1, _gen_settings(s, pair_tok, s.seed * 1000 + it, greedy=True)),
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
    _write_jsonl(it_dir / "generated.jsonl", records)

    def prompt_of(q: Question):
        return prompts.messages(ex, q, 0, reasoning=s.reasoning)

    rows = (
        build.sft_rows(by_q, prompt_of)
        if s.strategy == "sft"
        else build.dpo_rows(by_q, prompt_of, s.pairs_per_question)
    )
    _write_jsonl(it_dir / "train.jsonl", rows)
    samples = [j for js in judged for j in js]
    flags = Counter(f for j in samples for f in j.flags)
    stats = {
        "train_rows": len(rows),
        "correct_samples": sum(j.correct for j in samples),
        "samples": len(samples),
        "questions_solved": sum(any(j.correct for j in js) for js in judged),
        "rationalized": rationalized,
        **{f"degenerate/{k}": v for k, v in sorted(flags.items())},
        "degenerate_samples": sum(bool(j.flags) for j in samples),
    }
    print(
        f"iteration {it}: {stats['correct_samples']}/{len(samples)} samples correct, {stats['questions_solved']}/{len(questions)} questions solved, "
        f"{rationalized} rationalized, {stats['degenerate_samples']} degenerate, {len(rows)} training rows"
    )
    return stats


def evaluate(
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
    """Held-out accuracy with a greedy rationale and direct; degenerate outputs counted;
    the judged rationales are written to `save_to` (JSONL) when given."""
    s = cfg.star
    pair_tok = _pair_tok(cfg, tok)
    ids = [
        prompts.prompt_ids(pair_tok, prompts.messages(ex, q, s.few_shot, preamble=preamble, reasoning=s.reasoning))
        for q in questions
    ]
    judged = judge_samples(
        questions, generator.generate(ids, 1, _gen_settings(s, pair_tok, s.seed, greedy=True)), s.reasoning
    )
    if save_to is not None:
        _write_jsonl(save_to, [js[0].record(iteration, 0) for js in judged])
    out = {
        **rationale_accuracy(judged).as_dict("rationale"),
        "eval_degenerate": sum(bool(js[0].flags) for js in judged),
    }
    if s.direct_eval:
        zero_shot = [
            prompts.prompt_ids(pair_tok, prompts.messages(ex, q, 0, preamble=preamble, reasoning=s.reasoning))
            for q in questions
        ]
        direct = direct_accuracy(model, tok, zero_shot, questions, cfg.data.batch_size)
        if direct is not None:
            out.update(direct.as_dict("direct"))
    return out


def _check(cfg: StarRunConfig) -> None:
    s = cfg.star
    if s.iterations < 0 or s.samples_per_question < 1 or s.few_shot < 0 or s.max_new_tokens < 1:
        raise ConfigError(
            "--star.iterations >= 0, --star.samples_per_question >= 1, --star.few_shot >= 0 and --star.max_new_tokens >= 1 are required"
        )
    if s.temperature <= 0:
        raise ConfigError(
            "--star.temperature must be > 0 for sampling training rationales (evaluation is always greedy)"
        )
    if s.preload:
        if not Path(s.preload).is_file():
            raise ConfigError(f"--star.preload: no file {s.preload}")
        first = next((line for line in Path(s.preload).read_text().splitlines() if line.strip()), "{}")
        try:
            row = json.loads(first)
        except json.JSONDecodeError as e:
            raise DataError(f"{s.preload}, line 1: not valid JSON ({e.msg})") from None
        if s.strategy == "dpo" and "chosen" not in row:
            raise DataError(
                f"{s.preload}, line 1: SFT rows (prompt/completion); --star.strategy=dpo needs the pairs a dpo run saves"
            )
    if s.strategy == "sft" and cfg.method.losses not in (["dpo"], ["sft"]):
        raise ConfigError("--method.losses applies to --star.strategy=dpo; the sft strategy trains the sft loss")


def _new_run_dir(cfg: StarRunConfig) -> Path:
    path = Path(cfg.output_dir or f"outputs/star-{cfg.star.strategy}-{time.strftime('%Y%m%d-%H%M%S')}")
    if path.exists() and any(path.iterdir()):
        raise ConfigError(
            f"--output_dir={path} already holds files (a STaR run?); choose another --output_dir, so two runs' iterations never mix"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def _questions(s: StarConfig):
    """Training and held-out questions, disjoint. A single file has no splits: its questions
    are shuffled by `seed` and the held-out ones (num_eval_questions, else a fifth) set apart."""
    if Path(s.dataset).is_file():
        every = load_questions(s.dataset, s.train_split, s.seed, None, s.subjects, s.language)
        random.Random(s.seed).shuffle(every)
        n_eval = s.num_eval_questions if s.num_eval_questions is not None else max(1, len(every) // 5)
        if n_eval >= len(every):
            raise DataError(
                f"{s.dataset}: {len(every)} questions leave none for training after {n_eval} held out; lower --star.num_eval_questions"
            )
        test, train = every[:n_eval], every[n_eval:]
    else:
        train = load_questions(s.dataset, s.train_split, s.seed, None, s.subjects, s.language)
        test = load_questions(s.dataset, s.eval_split, s.seed, None, s.subjects, s.language)
        random.Random(s.seed).shuffle(train)
        random.Random(s.seed + 1).shuffle(test)
    if not train or not test:
        raise DataError(f"{s.dataset}: no questions in split {s.train_split if not train else s.eval_split!r}")
    train, test = train[: s.num_train_questions], test[: s.num_eval_questions]
    path = s.exemplars or prompts.default_exemplar_file(prompts.task_kind(s.dataset, train[0]))
    return train, test, prompts.load_exemplars(path)


def _train_config(cfg: StarRunConfig, it: int, it_dir: Path, merged: list[str]) -> TrainConfig:
    s = cfg.star
    method = cfg.method if s.strategy == "dpo" else MethodConfig(losses=["sft"], weights=[1.0])
    steps = None if s.steps is None else max(1, round(s.steps * s.step_growth ** (it - 1)))
    return TrainConfig(
        model=dataclasses.replace(cfg.model, init_adapter=merged),
        data=dataclasses.replace(cfg.data, dataset=str(it_dir / "train.jsonl"), split="train", max_train_pairs=None),
        training=dataclasses.replace(cfg.training, max_steps=steps, eval_every=0),
        method=method,
        method_name=f"star-{s.strategy}",
        output_dir=str(it_dir / "train"),
    )


def _pair_tok(cfg: StarRunConfig, tok) -> PairTokenizer:
    return PairTokenizer(tok, max(cfg.data.max_length, 2048), "prompt_left", cfg.data.chat_template)


def _gen_settings(s: StarConfig, pair_tok: PairTokenizer, seed: int, greedy: bool = False) -> GenSettings:
    # With a chat template the end-of-turn token ends a rationale. Without one, prompts are
    # the messages joined by newlines, so a newline ends it (exemplar rationales are one line)
    # before the model goes on to write the next question itself.
    stop = () if pair_tok.use_template else ("\n",)
    return GenSettings(
        max_new_tokens=s.max_new_tokens,
        temperature=0.0 if greedy else s.temperature,
        top_p=s.top_p,
        stop=stop,
        batch_tokens=s.gen_batch_tokens,
        max_rows=s.gen_batch_size,
        seed=seed,
    )


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _write_metrics(it_dir: Path, row: dict) -> None:
    write_atomic(it_dir / "metrics.json", json.dumps(row, indent=2))
