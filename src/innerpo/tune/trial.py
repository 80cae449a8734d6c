"""One trial: suggest values, train them as a sweep cell would, score, tell the study.

The trial's run directory is prepared and trained by the sweep's own cell functions
(innerpo.experiments.runner), so it holds what a sweep cell holds: config.yaml, log.txt,
metrics.jsonl, the adapter, summary.json, results.md, pairs.parquet (error.json on a
failure). It also gets `trial.json`: the trial's number, state, value and parameters.
States: `complete`, `incoherent` (complete, but its coherence constraint is violated:
never the best), `pruned` (stopped at a periodic evaluation by the pruner; its
error.json is removed, a pruned trial is not a crash), `failed` (an error),
`interrupted` (a signal or a killed process; its parameters are tried
again when the study continues).
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import TrialState

from innerpo.experiments.cells import Cell
from innerpo.experiments.runner import ERROR, prepare_cell, run_cell
from innerpo.io import write_atomic
from innerpo.train.signals import Interrupted
from innerpo.tune.objective import coherence_excess, incoherence, objective_value
from innerpo.tune.space import suggest
from innerpo.tune.study import STUDY_NAME, TuneSpec, trial_config
from innerpo.tune.study import storage as study_storage

TRIALS = "trials"
TRIAL_FILE = "trial.json"
COHERENCE = "coherence_excess"  # the constraint every scored trial reports
PRUNE_METRIC = "eval/accuracy"


def trial_dir(tune_dir: Path, number: int) -> Path:
    return Path(tune_dir) / TRIALS / f"trial-{number:04d}"


def run_trial(
    study: optuna.Study, trial: optuna.Trial, spec: TuneSpec, tune_dir: Path, threads: int | None = None
) -> None:
    """Train and score `trial` (asked from `study`), then tell the study how it ended."""
    run_dir = trial_dir(tune_dir, trial.number)
    values = suggest(trial, spec.params())
    cell = Cell(run_dir.name, run_dir, trial_config(spec, values, run_dir), values)
    prepare_cell(cell)
    trial.set_user_attr("run_dir", str(Path(TRIALS) / run_dir.name))

    def report(step: int, row: dict) -> None:
        trial.report(row[PRUNE_METRIC], step)
        if trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned at step {step}: {PRUNE_METRIC} {row[PRUNE_METRIC]:.3f} below the pruner's bar"
            )

    try:
        run_cell(cell, threads, on_eval=report)
    except optuna.TrialPruned as e:
        (run_dir / ERROR).unlink(missing_ok=True)
        _finish(study, trial, run_dir, TrialState.PRUNED, "pruned", values, note=str(e))
        return
    except Interrupted as e:
        mark_interrupted(study, tune_dir, trial.number, str(e))
        raise
    except Exception as e:
        _finish(study, trial, run_dir, TrialState.FAIL, "failed", values, note=f"{type(e).__name__}: {e}")
        return
    except BaseException:  # KeyboardInterrupt, SystemExit: record, then stop
        mark_interrupted(study, tune_dir, trial.number, "interrupted")
        raise
    summary = json.loads((run_dir / "summary.json").read_text())
    value = objective_value(summary, spec.objective)
    trial.set_constraint(COHERENCE, coherence_excess(summary))  # > 0: infeasible (see innerpo.tune.objective)
    reason = incoherence(summary)
    _finish(
        study,
        trial,
        run_dir,
        TrialState.COMPLETE,
        "incoherent" if reason else "complete",
        values,
        value=value,
        note=reason,
    )


def _finish(
    study,
    trial,
    run_dir: Path,
    state: TrialState,
    label: str,
    values: dict,
    value: float | None = None,
    note: str | None = None,
) -> None:
    if note:
        trial.set_user_attr("note", note)
    write_trial_file(run_dir, trial.number, label, values, value, note)
    study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)


def write_trial_file(
    run_dir: Path, number: int, state: str, params: dict, value: float | None = None, note: str | None = None
) -> None:
    record = {"number": number, "state": state, "value": value, "params": params, "note": note}
    write_atomic(Path(run_dir) / TRIAL_FILE, json.dumps(record, indent=2))


def mark_interrupted(study: optuna.Study, tune_dir: Path, number: int, note: str) -> None:
    """Record a trial that did not end on its own as failed and `interrupted`, and queue
    its parameters again so the continued study tries them from scratch.

    Goes through the storage because a study can only `tell` trials it asked itself, and
    this one may have been asked by a process that was killed."""
    storage = study_storage(tune_dir)
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(STUDY_NAME), number)
    frozen = storage.get_trial(trial_id)
    storage.set_trial_user_attr(trial_id, "interrupted", True)
    storage.set_trial_user_attr(trial_id, "note", note)
    storage.set_trial_state_values(trial_id, TrialState.FAIL)
    if frozen.params:
        study.enqueue_trial(frozen.params, user_attrs={"retry_of": number})
    run_dir = trial_dir(tune_dir, number)
    if run_dir.is_dir():
        write_trial_file(run_dir, number, "interrupted", frozen.params, note=note)
