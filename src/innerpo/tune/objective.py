"""What a trial is scored on: a validation suite, never the test pairs, and one number.

The validation suite mirrors the run's eval suite shift for shift, with each shift's
`validation` split: for the synthetic suite, pairs whose instances no test pair and no
train pair uses (innerpo.data.synthetic); for GENIES, a tenth of train carved out by a
hash of the prompt, trials then training on the rest (`fit`, innerpo.data.genies). Any
other source has no validation split: give `--validation-suite FILE.yaml`.

Objectives (higher is better):
- `ood_accuracy` (default): mean adapter preference accuracy over the suite's shifts
  other than `in_domain` — how far the learned preference carries, the project's question;
- `accuracy`: mean over every shift; `in_domain_accuracy`; `shift:NAME`: one shift.

A trial whose coherence flag trips on any shift (the adapter raised the chosen answers'
NLL by more than the threshold) is counted as failed, not scored: such an adapter
damaged the language model rather than steered it, and must not become the best
configuration however well it ranks pairs. Its value is kept as the trial's user
attribute `value_if_coherent`. The alternative, a constrained study (TPE's
`constraints_func`; Optuna then picks the best among feasible trials), would let TPE
learn the infeasible region, but it needs the coherence margin reported as a
constraint value on every trial and shows incoherent trials as "complete"; a failure
with its reason in the trials table is plainer. Its cost, measured in the README's
tuning run: TPE learns nothing from failed trials, so it kept proposing learning rates
where 7 of 16 trials tripped the flag; a constrained study is the next step.
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
            raise ObjectiveError(f"--objective {objective}: the suite has no shift {objective[6:]!r} (shifts: {', '.join(shifts)})")
        return
    if objective not in OBJECTIVES:
        raise ObjectiveError(f"--objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if objective == "in_domain_accuracy" and IN_DOMAIN not in shifts:
        raise ObjectiveError(f"--objective in_domain_accuracy: the suite has no {IN_DOMAIN!r} shift")
    if objective == "ood_accuracy" and not set(shifts) - {IN_DOMAIN}:
        raise ObjectiveError("--objective ood_accuracy: the suite has no shift besides in_domain")


def incoherence(summary: dict) -> str | None:
    """Why the trial counts as failed (its coherence flags), or None."""
    flagged = [name for name, s in summary["shifts"].items() if s.get("coherence_flag")]
    if flagged:
        return f"incoherent: coherence flag on {', '.join(flagged)} (chosen NLL rose by more than {summary['coherence_threshold']} nats/token)"
    return None


def objective_value(summary: dict, objective: str) -> float:
    """The trial's score from its summary.json (coherence aside: see `incoherence`)."""
    shifts = summary["shifts"]
    if objective.startswith("shift:"):
        names = [objective[6:]]
    elif objective == "in_domain_accuracy":
        names = [IN_DOMAIN]
    elif objective == "ood_accuracy":
        names = [n for n in shifts if n != IN_DOMAIN]
    else:
        names = list(shifts)
    return sum(shifts[n]["adapter_accuracy"] for n in names) / len(names)


def validation_suite(suite_name: str) -> dict:
    """The validation twin of suite `suite_name`, as a suite YAML's contents."""
    suite = get_suite(suite_name)
    shifts = {}
    for name, shift in suite.shifts.items():
        if not shift.dataset.startswith(("synthetic", "genies:")):
            raise ObjectiveError(f"suite {suite.name}: shift {name!r} ({shift.dataset}) has no validation split; "
                                 "give --validation-suite FILE.yaml with held-out pairs that are not your test pairs")
        shifts[name] = {"dataset": shift.dataset, "split": "validation"}
    return {"name": f"{suite.name}-validation", "shifts": shifts}


def training_split(dataset: str, split: str) -> str:
    """GENIES trials train on `fit` (train without the validation tenth); others keep their split."""
    if dataset.startswith("genies:") and split == "train":
        return CARVED_SPLITS[1]
    return split
