"""What a trial is scored on: a validation suite, never the test pairs, and one number.

The validation suite mirrors the run's eval suite shift for shift, with each shift's
`validation` split: for the synthetic suite, pairs whose instances no test pair and no
train pair uses (innerpo.data.synthetic); for GENIES, a tenth of train carved out by a
hash of the prompt, trials then training on the rest (`fit`, innerpo.data.genies). Any
other source has no validation split: give `--validation_suite FILE.yaml`.

Objectives (higher is better):
- `ood_accuracy` (default): mean adapter preference accuracy over the suite's shifts
  other than `in_domain` — how far the learned preference carries, the project's question;
- `accuracy`: mean over every shift; `in_domain_accuracy`; `shift:NAME`: one shift.

Coherence is a constraint, not part of the score: every scored trial reports
`coherence_excess` (the largest rise of the chosen answers' NLL over the shifts, minus
the threshold, nats/token) through Optuna's `Trial.set_constraint`. A trial whose flag
trips on any shift (excess > 0) is infeasible: its adapter damaged the language model
rather than steered it, so it never becomes the best configuration (Optuna's
`best_trial` takes feasible trials only), and it is listed as `incoherent` with its
reason. TPE reads the constraint and learns where infeasible trials lie. The first
version failed such trials instead; TPE learns nothing from failed trials, and in the
docs' tuning results it kept proposing learning rates where 7 of 16 trials tripped.
"""

from __future__ import annotations

from innerpo.data.genies import CARVED_SPLITS
from innerpo.eval.suites import get_suite

OBJECTIVES = ("ood_accuracy", "accuracy", "in_domain_accuracy", "shift:NAME")
IN_DOMAIN = "in_domain"


class ObjectiveError(ValueError):
    """An objective that this suite cannot compute, or a suite without a validation split."""


def check_objective(objective: str, shifts: list[str]) -> None:
    if objective.startswith("shift:"):
        if objective[6:] not in shifts:
            raise ObjectiveError(
                f"--objective {objective}: the suite has no shift {objective[6:]!r} (shifts: {', '.join(shifts)})"
            )
        return
    if objective not in OBJECTIVES:
        raise ObjectiveError(f"--objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if objective == "in_domain_accuracy" and IN_DOMAIN not in shifts:
        raise ObjectiveError(f"--objective in_domain_accuracy: the suite has no {IN_DOMAIN!r} shift")
    if objective == "ood_accuracy" and not set(shifts) - {IN_DOMAIN}:
        raise ObjectiveError("--objective ood_accuracy: the suite has no shift besides in_domain")


def incoherence(summary: dict) -> str | None:
    """Why the trial is infeasible (its coherence flags), or None."""
    flagged = [name for name, s in summary["shifts"].items() if s.get("coherence_flag")]
    if flagged:
        return (
            f"incoherent: coherence flag on {', '.join(flagged)} (chosen NLL rose by more than "
            f"{summary['coherence_threshold']} nats/token)"
        )
    return None


def coherence_excess(summary: dict) -> float:
    """max over shifts of (adapter − base chosen NLL per token) − threshold: > 0 exactly
    when a coherence flag trips (innerpo.eval.report sets it for a rise above the threshold)."""
    threshold = summary["coherence_threshold"]
    return max(s["adapter_nll"] - s["base_nll"] - threshold for s in summary["shifts"].values())


def objective_shifts(summary: dict, objective: str) -> list[str]:
    """The shifts the objective averages over."""
    shifts = summary["shifts"]
    if objective.startswith("shift:"):
        return [objective[6:]]
    if objective == "in_domain_accuracy":
        return [IN_DOMAIN]
    if objective == "ood_accuracy":
        return [n for n in shifts if n != IN_DOMAIN]
    return list(shifts)


def objective_value(summary: dict, objective: str) -> float:
    """The trial's score from its summary.json (coherence aside: see `incoherence`)."""
    names = objective_shifts(summary, objective)
    return sum(summary["shifts"][n]["adapter_accuracy"] for n in names) / len(names)


def calibration_columns(summary: dict, objective: str) -> dict[str, float | None]:
    """Reported beside the objective, not optimised: the adapter's Brier score and RMS
    calibration error (innerpo.eval.calibration) averaged over the objective's shifts;
    None where a shift lacks them (a summary written before they existed)."""
    shifts = [summary["shifts"][n] for n in objective_shifts(summary, objective)]
    out = {}
    for key in ("brier", "rms_calibration_error"):
        values = [s.get(f"adapter_{key}") for s in shifts]
        out[key] = None if not values or None in values else sum(values) / len(values)
    return out


def validation_suite(suite_name: str) -> dict:
    """The validation twin of suite `suite_name`, as a suite YAML's contents."""
    suite = get_suite(suite_name)
    shifts = {}
    for name, shift in suite.shifts.items():
        if not shift.dataset.startswith(("synthetic", "genies:")):
            raise ObjectiveError(
                f"suite {suite.name}: shift {name!r} ({shift.dataset}) has no validation split; "
                "give --validation_suite FILE.yaml with held-out pairs that are not your test pairs"
            )
        shifts[name] = {"dataset": shift.dataset, "split": "validation"}
    return {"name": f"{suite.name}-validation", "shifts": shifts}


def training_split(dataset: str, split: str) -> str:
    """GENIES trials train on `fit` (train without the validation tenth); others keep their split."""
    if dataset.startswith("genies:") and split == "train":
        return CARVED_SPLITS[1]
    return split
