"""The end products of a study, rewritten from the study's storage after every run.

- `best.yaml`: the best coherent complete trial's full configuration as a `--config`
  file, its eval suite set back to the real (test) suite; `innerpo sweep` re-runs it on fresh seeds
  (`methods: [{method: M, config: TUNE/best.yaml}]`), so reported numbers are not the
  lucky trial's.
- `trials.csv` / `trials.md`: every trial: number, state (`incoherent` for a complete
  trial that violates its coherence constraint), objective value, the constraint
  (`coherence_excess`), the adapter's Brier score and RMS calibration error over the
  objective's shifts (read from the trial's summary.json; reported, not optimised),
  parameters, duration, note (why it failed, was pruned or is incoherent).
- `importances.json` and `importances.png` (coherent complete trials): Optuna's parameter importances with the
  PED-ANOVA evaluator (Optuna's default, fANOVA, and mean decrease in impurity need
  scikit-learn's random forests; PED-ANOVA needs nothing more). PED-ANOVA asks how the
  top `target_quantile` of trials differs from all of them; its default (10%) holds no
  more than one trial in a small study, so the quantile is raised to hold at least two
  (2/n, at most 50%). With a dozen trials these are rough indications, not measurements.
- `history.png`: the optimization history (objective per trial and best so far), drawn
  by Optuna's matplotlib backend.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from innerpo.io import write_atomic
from innerpo.train.run_dir import load_config
from innerpo.tune.objective import calibration_columns
from innerpo.tune.study import TuneSpec, best_config, open_study
from innerpo.tune.trial import COHERENCE, trial_dir


def write_results(tune_dir: Path, spec: TuneSpec) -> dict:
    """Write the end products; returns {"best": (number, value) or None, "counts": {...}}."""
    tune_dir = Path(tune_dir)
    study = open_study(tune_dir, spec)
    trials = study.get_trials(deepcopy=False)
    frame = _table(trials, tune_dir, spec.objective)
    write_atomic(tune_dir / "trials.csv", frame.to_csv(index=False))
    write_atomic(tune_dir / "trials.md", _markdown(frame, spec))
    complete = [t for t in trials if t.state == TrialState.COMPLETE and not _infeasible(t)]
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    best = None
    if complete:
        trial = study.best_trial  # feasible trials only (a constrained study)
        best = (trial.number, trial.value)
        cfg = load_config(trial_dir(tune_dir, trial.number))
        header = (
            f"# Best of {len(complete)} complete trial(s) of `innerpo tune {spec.method}` in {tune_dir}: "
            f"trial {trial.number}, "
            f"{spec.objective} = {trial.value:.4f} on the validation suite.\n"
            f"# Use: innerpo train {spec.method} --config {tune_dir / 'best.yaml'}\n"
        )
        write_atomic(tune_dir / "best.yaml", header + yaml.safe_dump(best_config(spec, cfg), sort_keys=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        _plots(study, tune_dir, complete)
    return {"best": best, "counts": counts}


def _calibration(tune_dir: Path, trial, objective: str) -> dict:
    path = tune_dir / trial.user_attrs.get("run_dir", "") / "summary.json"
    if not trial.user_attrs.get("run_dir") or not path.is_file():
        return {"brier": None, "rms_calibration_error": None}
    return calibration_columns(json.loads(path.read_text()), objective)


def _table(trials, tune_dir: Path, objective: str):
    import pandas as pd

    rows = []
    for t in trials:
        state = (
            "interrupted"
            if t.user_attrs.get("interrupted")
            else "incoherent"
            if _infeasible(t)
            else t.state.name.lower()
        )
        rows.append(
            {
                "number": t.number,
                "state": state,
                "value": t.value,
                "coherence_excess": t.constraints.get(COHERENCE),
                **_calibration(tune_dir, t, objective),
                **{f"params_{k}": v for k, v in t.params.items()},
                "duration_s": round(t.duration.total_seconds(), 1) if t.duration else None,
                "note": t.user_attrs.get("note", ""),
                "run_dir": t.user_attrs.get("run_dir", ""),
            }
        )
    return pd.DataFrame(rows)


def _infeasible(trial) -> bool:
    return any(v > 0 for v in trial.constraints.values())


def _markdown(frame, spec: TuneSpec) -> str:
    lines = [f"# Trials of `innerpo tune {spec.method}` (objective: {spec.objective}, validation suite)", ""]
    if not len(frame):
        return "\n".join(lines + ["No trials yet.", ""])
    cols = [c for c in frame.columns if c not in ("run_dir",)]
    lines += ["| " + " | ".join(c.removeprefix("params_") for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.to_dict("records"):
        lines.append("| " + " | ".join(_cell(row[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None or value != value:  # None or NaN
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "/")


def _plots(study, tune_dir: Path, complete) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    if complete:
        ax = plot_optimization_history(study, target_name="objective (validation)")
        ax.figure.savefig(tune_dir / "history.png", dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
    varied = {k for t in complete for k in t.params if len({str(u.params.get(k)) for u in complete}) > 1}
    if len(complete) < 2 or not varied:
        write_atomic(
            tune_dir / "importances.json", json.dumps({"note": "needs two or more complete trials that differ"})
        )
        return
    quantile = min(0.5, max(0.1, 2 / len(complete)))
    evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile)
    feasible = optuna.create_study(
        direction="maximize"
    )  # importances of the coherent trials only (Optuna would take every complete one)
    feasible.add_trials(complete)
    importances = optuna.importance.get_param_importances(feasible, evaluator=evaluator)
    write_atomic(
        tune_dir / "importances.json",
        json.dumps(
            {
                "evaluator": "PED-ANOVA",
                "target_quantile": quantile,
                "complete_trials": len(complete),
                "importances": importances,
            },
            indent=2,
        ),
    )
    ax = plot_param_importances(feasible, evaluator=evaluator)
    ax.figure.savefig(tune_dir / "importances.png", dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
