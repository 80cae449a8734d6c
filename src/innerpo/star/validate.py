"""Everything `innerpo star` checks before it generates or writes anything.

`check_star(cfg)` checks the loop's settings, the training method as `innerpo train`
would (innerpo.train.validate: settings and ranges, the method's own refusals, a
hidden-state method's layers against the model), a --star.preload file, and reads every
question (training, in_domain, each eval set) and the exemplars. It returns what it
read, so the run uses exactly that. Each failure is an InputError (exit code 2).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from innerpo.errors import ConfigError, DataError
from innerpo.methods.config import MethodConfig
from innerpo.methods.presets import resolve_method_name
from innerpo.star import prompts
from innerpo.star.config import StarRunConfig
from innerpo.star.question_sets import IN_DOMAIN, held_out, parse_eval_sets, training_and_in_domain
from innerpo.star.schema import Question
from innerpo.train.config import TrainConfig, TrainingConfig


@dataclass
class Inputs:
    train: list[Question]
    sets: dict[str, list[Question]]
    """Held-out questions by set name, `in_domain` first."""
    exemplars: object


def check_star(cfg: StarRunConfig) -> Inputs:
    s = cfg.star
    _check_loop(cfg)
    from innerpo.train.validate import check_settings, validate_method

    probe = training_config(cfg, 1, Path("."), [])
    check_settings(probe)
    validate_method(probe)
    sets = parse_eval_sets(s)
    train, in_domain = training_and_in_domain(s)
    path = s.exemplars or prompts.default_exemplar_file(prompts.task_kind(s.dataset, train[0]))
    return Inputs(train, {IN_DOMAIN: in_domain, **held_out(s, sets)}, prompts.load_exemplars(path))


def training_config(cfg: StarRunConfig, it: int, it_dir: Path, merged: list[str]) -> TrainConfig:
    """Iteration `it`'s `innerpo train` run: on it_dir/train.jsonl, from the adapters in `merged`.
    Its seed (LoRA init, batch order) is --star.seed, so a STaR seed varies all of a run's
    randomness, as a training sweep's seed does."""
    s = cfg.star
    if s.resolved_strategy == "sft":
        method, name = MethodConfig(losses=["sft"], weights=[1.0]), "star-sft"
    else:
        method, name = cfg.method, s.method or "star-dpo"
    steps = None if s.steps is None else max(1, round(s.steps * s.step_growth ** (it - 1)))
    return TrainConfig(
        model=dataclasses.replace(cfg.model, init_adapter=merged),
        data=dataclasses.replace(cfg.data, dataset=str(it_dir / "train.jsonl"), split="train", max_train_pairs=None),
        training=dataclasses.replace(cfg.training, max_steps=steps, eval_every=0, seed=s.seed),
        method=method,
        method_name=name,
        output_dir=str(it_dir / "train"),
    )


def _check_loop(cfg: StarRunConfig) -> None:
    s = cfg.star
    if s.iterations < 0 or s.samples_per_question < 1 or s.few_shot < 0 or s.max_new_tokens < 1:
        raise ConfigError(
            "--star.iterations >= 0, --star.samples_per_question >= 1, --star.few_shot >= 0 and "
            "--star.max_new_tokens >= 1 are required"
        )
    if s.temperature <= 0:
        raise ConfigError(
            "--star.temperature must be > 0 for sampling training rationales (evaluation is always greedy)"
        )
    if not 0 <= s.p_rationalization <= 1:
        raise ConfigError(f"--star.p_rationalization={s.p_rationalization}: expected a share in [0, 1]")
    if s.eval_samples < 0:
        raise ConfigError(f"--star.eval_samples={s.eval_samples}: expected >= 0 (0: greedy only)")
    bad_k = [k for k in s.eval_k if not 1 <= k <= s.eval_samples]
    if bad_k:
        raise ConfigError(
            f"--star.eval_k={s.eval_k}: each k must lie in 1..--star.eval_samples ({s.eval_samples}); got {bad_k}"
        )
    if s.method is not None:
        if s.strategy == "sft":
            raise ConfigError(
                f"--star.method={s.method} trains preference pairs (the dpo strategy); it cannot go with "
                "--star.strategy=sft"
            )
        if resolve_method_name(s.method) != s.method:
            raise ConfigError(
                f"--star.method={s.method}: use the preset's name, {resolve_method_name(s.method)} (the command "
                "line and sweep files resolve aliases and load the preset's settings)"
            )
    if s.resolved_strategy == "sft" and cfg.method.losses not in (["dpo"], ["sft"]):
        raise ConfigError("--method.losses applies to --star.strategy=dpo; the sft strategy trains the sft loss")
    if cfg.training.seed != TrainingConfig.seed:
        raise ConfigError(
            f"--training.seed={cfg.training.seed}: a STaR run's training seed is --star.seed (which also draws "
            "its training questions and samples); set that instead"
        )
    if s.preload:
        _check_preload(s.preload, s.resolved_strategy)


def _check_preload(path: str, strategy: str) -> None:
    if not Path(path).is_file():
        raise ConfigError(f"--star.preload: no file {path}")
    first = next((line for line in Path(path).read_text().splitlines() if line.strip()), "{}")
    try:
        row = json.loads(first)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}, line 1: not valid JSON ({e.msg})") from None
    if strategy == "dpo" and "chosen" not in row:
        raise DataError(
            f"{path}, line 1: SFT rows (prompt/completion); --star.strategy=dpo needs the pairs a dpo run saves"
        )
