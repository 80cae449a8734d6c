"""A tune directory: what the study searches (tune.yaml), its Optuna storage, its trials.

TUNE/
  tune.yaml               method, space, shared settings, objective, pruner, seed
  validation-suite.yaml   the suite trials are scored on (innerpo.tune.objective)
  study.journal           Optuna's JournalStorage file: every trial, its values and states
  trials/trial-NNNN/      one ordinary run directory per trial (the shape of a sweep cell)
  workers/                logs of worker processes (--workers N) / .submitit/ (SLURM)
  best.yaml, trials.csv, trials.md, importances.json, history.png, importances.png

Storage: an Optuna journal file (JournalStorage + JournalFileBackend) rather than
SQLite. Several worker processes, or SLURM jobs on other nodes, write to one study;
the journal is an append-only log guarded by a lock file that also works on NFS, where
SQLite's locking is unreliable and concurrent writers meet "database is locked". It
needs no database server and survives a kill at any point: a re-run replays the log.

Sampler: TPE, seeded (worker k gets seed + k so parallel workers do not propose the same
point; `constant_liar` keeps them away from points still running); or, with `--sampler grid`,
every point of a space of `choices` once (Optuna's GridSampler, which skips points another
worker holds): the same stated grid for every method when methods must get equal effort. Pruner: Optuna's
median rule on the periodic evaluation's accuracy (the in-domain validation subset the
loop scores every `eval_every` steps), or successive halving, or none. The intermediate
value is in-domain accuracy while the default objective is out-of-domain: pruning stops
trials that do not even learn the training preference, which cannot carry further.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
import yaml

from innerpo.config import apply_values, to_dict
from innerpo.experiments.sweep_file import nest
from innerpo.io import write_atomic
from innerpo.train.config import TrainConfig, preset_config
from innerpo.tune.objective import training_split
from innerpo.tune.space import Space, parse_space

STUDY_NAME = "tune"
PRUNERS = ("median", "halving", "none")
SAMPLERS = ("tpe", "grid")
SPEC_FILE = "tune.yaml"


class TuneError(ValueError):
    """A tune directory or arguments that cannot be used (exit code 2)."""


@dataclass
class TuneSpec:
    method: str
    space: dict
    """{dotted key: distribution record} (innerpo.tune.space)."""
    base: dict = field(default_factory=dict)
    """Settings shared by every trial, nested as the flags."""
    objective: str = "ood_accuracy"
    pruner: str = "median"
    seed: int = 0
    """TPE's seed (the trials' training seed is `training.seed`, the same in every trial)."""
    startup_trials: int = 10
    """Trials TPE samples at random before it models the results (Optuna's default 10)."""
    suite: str = "synthetic"
    """The eval suite the best configuration is tested on (never used by a trial)."""
    validation_suite: str = ""
    sampler: str = "tpe"
    """tpe, or grid: every point of a space of `choices`, each once."""

    def params(self) -> Space:
        return parse_space(self.space, SPEC_FILE)


def save_spec(tune_dir: Path, spec: TuneSpec) -> None:
    """Write tune.yaml; a directory holding another study's spec stops the command."""
    path = Path(tune_dir) / SPEC_FILE
    if path.is_file():
        old = load_spec(tune_dir)
        differ = [
            k
            for k in ("method", "space", "base", "objective", "suite", "sampler")
            if getattr(old, k) != getattr(spec, k)
        ]
        if differ:
            raise TuneError(
                f"{tune_dir} holds a study with other {', '.join(differ)} ({path}); continue it with the same "
                "settings, or choose another --output_dir"
            )
    Path(tune_dir).mkdir(parents=True, exist_ok=True)
    write_atomic(path, yaml.safe_dump(asdict(spec), sort_keys=False))


def load_spec(tune_dir: Path) -> TuneSpec:
    path = Path(tune_dir) / SPEC_FILE
    if not path.is_file():
        raise TuneError(f"{tune_dir} is not a tune directory (no {SPEC_FILE})")
    return TuneSpec(**yaml.safe_load(path.read_text()))


def storage(tune_dir: Path) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(Path(tune_dir) / "study.journal")
    # The open(O_EXCL)-based lock works on NFS too (SLURM jobs on several nodes).
    return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":  # the loop reports evaluations after updates only (step 0 would tie)
        return optuna.pruners.MedianPruner(n_startup_trials=2)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise TuneError(f"--pruner {name!r}: choose one of {', '.join(PRUNERS)}")


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler without its end-of-grid `study.stop()`: that call is only legal
    inside `study.optimize`, and our workers ask and tell (it raised after the last point was
    told). The workers stop at the trial count, which for a grid is its size."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def open_study(tune_dir: Path, spec: TuneSpec, worker: int = 0) -> optuna.Study:
    """The study in `tune_dir`, created on first use; sampler and pruner as the spec says."""
    if spec.sampler == "grid":
        sampler = _GridSampler(grid(spec.params()), seed=spec.seed)
    else:
        sampler = optuna.samplers.TPESampler(
            seed=spec.seed + worker, n_startup_trials=spec.startup_trials, constant_liar=True
        )
    return optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage(tune_dir),
        direction="maximize",
        sampler=sampler,
        pruner=make_pruner(spec.pruner),
        load_if_exists=True,
    )


def grid(space: Space) -> dict[str, list]:
    """{key: its choices} for the grid sampler; a range in the space cannot be a grid."""
    ranges = [key for key, param in space.items() if param.choices is None]
    if ranges:
        raise TuneError(
            f"--sampler grid needs a list of choices for every key; {', '.join(ranges)} "
            "is a range (write it as {choices: [...]})"
        )
    return {key: list(param.choices) for key, param in space.items()}


def grid_size(space: Space) -> int:
    return math.prod(len(v) for v in grid(space).values())


def trial_config(spec: TuneSpec, values: dict, run_dir: Path) -> TrainConfig:
    """The preset < shared settings < the trial's values, scored on the validation suite.

    GENIES data trains on `fit` (train without its validation tenth)."""
    where = f"trial {run_dir.name}"
    cfg = apply_values(preset_config(spec.method), spec.base, f"{where} (shared settings)")
    for key, value in values.items():
        cfg = apply_values(cfg, nest(key, value), f"{where} ({key})")
    return apply_values(
        cfg,
        {
            "method_name": spec.method,
            "output_dir": str(run_dir),
            "config": None,
            "data": {"split": training_split(cfg.data.dataset, cfg.data.split)},
            "eval": {"suite": spec.validation_suite},
        },
        where,
    )


def best_config(spec: TuneSpec, trial_cfg: TrainConfig) -> dict:
    """The best trial's settings as a `--config` file: evaluated on the real suite, no run directory."""
    values = to_dict(apply_values(trial_cfg, {"eval": {"suite": spec.suite}}, "best config"))
    for key in ("output_dir", "config"):
        values.pop(key)
    return values
