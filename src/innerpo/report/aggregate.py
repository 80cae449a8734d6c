"""From loaded runs to the numbers of one report table (a suite on one base model).

For every variant (method + differing settings, its seeds pooled) and shift:
- accuracy: mean of `adapter_correct` over seeds × pairs, 95% CI (innerpo.report.stats);
- change vs base: the same pairs' `adapter_correct − base_correct`, in points, with CI;
- difference vs the baseline variant on the pairs both have, with CI;
- coherence: mean over seeds of the adapter − base chosen NLL per token (summary.json's
  `coherence_delta_nll`) and how many seeds were flagged;
- GENIES normalised generalization when runs trained on that shift's data are present;
- calibration (innerpo.eval.calibration): the mean probability given to the chosen
  completion and the Brier score are per-pair means, so they get the same crossed
  bootstrap and paired difference vs the baseline as accuracy; the RMS calibration
  error is not a per-pair mean: its mean over seeds of each run's value is given, without
  an interval.
Plus each variant's in-domain and out-of-distribution gains for the gain-vs-gain figure.

Pairs are matched by `pair_id` (a repeated pair gets an occurrence number), and only
pairs every compared run scored are used; the count is stated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from innerpo.eval.calibration import chosen_probability
from innerpo.report.runs import ReportError, Run
from innerpo.report.stats import Estimate, mean_ci, paired_difference


@dataclass
class Table:
    suite: str
    model: str
    shifts: list[str]
    datasets: dict[str, str]
    runs: list[Run]
    variants: list[str] = field(default_factory=list)
    n_pairs: dict[str, int] = field(default_factory=dict)
    base: dict[str, Estimate] = field(default_factory=dict)
    accuracy: dict[tuple[str, str], Estimate] = field(default_factory=dict)
    change: dict[tuple[str, str], Estimate] = field(default_factory=dict)
    versus: dict[tuple[str, str], Estimate] = field(default_factory=dict)
    coherence: dict[tuple[str, str], tuple[float, int, int]] = field(default_factory=dict)
    """(mean ΔNLL over seeds, seeds flagged, seeds)."""
    normalized: dict[tuple[str, str], float] = field(default_factory=dict)
    target_tuned: dict[str, float] = field(default_factory=dict)
    gains: dict[str, tuple[Estimate, Estimate]] = field(default_factory=dict)
    """variant -> (in-domain change vs base, out-of-distribution change vs base), points as fractions."""
    in_domain: dict[str, str] = field(default_factory=dict)
    calibration: dict[tuple[str, str, str], Estimate] = field(default_factory=dict)
    """(variant or `base`, shift, `p_chosen` | `brier`) -> estimate over seeds and pairs."""
    calibration_versus: dict[tuple[str, str, str], Estimate] = field(default_factory=dict)
    """(variant, shift, `p_chosen` | `brier`) -> paired difference vs the baseline."""
    rmsce: dict[tuple[str, str], float] = field(default_factory=dict)
    """(variant or `base`, shift) -> mean over seeds of the runs' RMS calibration error."""
    baseline: str | None = None
    note: str = ""


def training_dataset(run: Run) -> str:
    d = run.config.data.dataset
    return "synthetic:in_domain" if d == "synthetic" else d


def tables(runs: list[Run], baseline: str | None) -> list[Table]:
    """One Table per (suite, base model) found among the runs' evaluations."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        for suite in run.evaluations:
            groups.setdefault((suite, run.config.model.base_model), []).append(run)
    return [build_table(suite, model, group, baseline) for (suite, model), group in groups.items()]


CALIBRATION = ("p_chosen", "brier")
"""Per-pair calibration figures: the probability of the chosen completion, and (1 − p)²."""


def _series(run: Run, suite: str, shift: str, column: str) -> pd.Series:
    frame = run.evaluations[suite].pairs
    rows = frame[frame["shift"] == shift]
    key = rows["pair_id"] + "#" + rows.groupby("pair_id").cumcount().astype(str)
    return pd.Series(_column(rows, column, run.evaluations[suite].path), index=key.to_numpy())


def _column(rows: pd.DataFrame, column: str, where) -> np.ndarray:
    """A per-pair column; `V_brier` is (1 − V_p_chosen)², and `V_p_chosen` is recomputed
    from the per-token means for results written before it was a column."""
    variant, _, name = column.partition("_")
    if name == "brier":
        return np.square(1.0 - _column(rows, f"{variant}_p_chosen", where))
    if name == "p_chosen" and column not in rows and f"{variant}_chosen_logp_mean" in rows:
        return chosen_probability(rows[f"{variant}_chosen_logp_mean"], rows[f"{variant}_rejected_logp_mean"])
    if column not in rows:
        raise ReportError(f"{where}: per-pair results have no column {column!r}")
    return rows[column].to_numpy(dtype=float)


def _matrix(runs: list[Run], suite: str, shift: str, column: str, keys: pd.Index) -> np.ndarray:
    return np.stack([_series(r, suite, shift, column).reindex(keys).to_numpy() for r in runs])


def _common(runs: list[Run], suite: str, shift: str) -> pd.Index:
    keys = None
    for r in runs:
        k = _series(r, suite, shift, "adapter_correct").index
        keys = k if keys is None else keys.intersection(k, sort=False)
    return keys


def resolve_baseline(
    variants: list[str], runs: list[Run], baseline: str | None, targets: frozenset[str] = frozenset()
) -> str | None:
    """The variant `baseline` names: itself, or the one variant of that method. Runs trained
    on one of `targets` (the datasets of the table's shifts other than in_domain: the
    normaliser of GENIES' generalization, not a competitor) do not count when others remain."""
    if baseline is None or baseline in variants:
        return baseline
    matches = sorted({r.variant for r in runs if r.config.method_name == baseline})
    own = sorted({r.variant for r in runs if r.config.method_name == baseline and training_dataset(r) not in targets})
    if len(matches) > 1 and len(own) == 1:
        return own[0]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ReportError(
            f"--baseline {baseline!r} matches several variants ({'; '.join(matches)}); give one of them in full"
        )
    return None


def build_table(suite: str, model: str, runs: list[Run], baseline: str | None) -> Table:
    first = runs[0].evaluations[suite].summary
    shifts = list(first["shifts"])
    table = Table(suite, model, shifts, {s: first["shifts"][s].get("dataset", "") for s in shifts}, runs)
    by_variant: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: (r.variant, r.seed)):
        by_variant.setdefault(run.variant, []).append(run)
    table.variants = sorted(by_variant, key=lambda v: min(runs.index(r) for r in by_variant[v]))
    targets = frozenset(d for s, d in table.datasets.items() if s != "in_domain" and "in_domain" in shifts)
    table.baseline = resolve_baseline(table.variants, runs, baseline, targets)
    if baseline and table.baseline is None:
        table.note = f"baseline {baseline!r} is not among these runs; no paired differences."
    has_base = all("base_correct" in r.evaluations[suite].pairs for r in runs)
    # calibration needs the per-pair probability, or the per-token means it is computed from
    has_p = all(
        any(c in r.evaluations[suite].pairs for c in ("adapter_p_chosen", "adapter_chosen_logp_mean")) for r in runs
    )
    for shift in shifts:
        keys = _common(runs, suite, shift)
        table.n_pairs[shift] = len(keys)
        if has_base:
            table.base[shift] = mean_ci(_matrix(runs[:1], suite, shift, "base_correct", keys))
            for metric in CALIBRATION if has_p else ():
                base_values = _matrix(runs[:1], suite, shift, f"base_{metric}", keys)
                table.calibration["base", shift, metric] = mean_ci(base_values)
            error = runs[0].evaluations[suite].summary["shifts"][shift].get("base_rms_calibration_error")
            if error is not None:
                table.rmsce["base", shift] = float(error)
        for variant, group in by_variant.items():
            adapter = _matrix(group, suite, shift, "adapter_correct", keys)
            table.accuracy[variant, shift] = mean_ci(adapter)
            if has_base:
                base = _matrix(runs[:1], suite, shift, "base_correct", keys)
                table.change[variant, shift] = paired_difference(adapter, base, seeds_match=False)
            if table.baseline and variant != table.baseline:
                other = by_variant[table.baseline]
                match = [r.seed for r in group] == [r.seed for r in other] and len({r.seed for r in group}) == len(
                    group
                )
                table.versus[variant, shift] = paired_difference(
                    adapter, _matrix(other, suite, shift, "adapter_correct", keys), seeds_match=match
                )
            for metric in CALIBRATION if has_p else ():
                values = _matrix(group, suite, shift, f"adapter_{metric}", keys)
                table.calibration[variant, shift, metric] = mean_ci(values)
                if (variant, shift) in table.versus:
                    other = _matrix(by_variant[table.baseline], suite, shift, f"adapter_{metric}", keys)
                    table.calibration_versus[variant, shift, metric] = paired_difference(values, other, match)
            stats = [r.evaluations[suite].summary["shifts"][shift] for r in group]
            errors = [s.get("adapter_rms_calibration_error") for s in stats]
            errors = [e for e in errors if e is not None]
            if errors:
                table.rmsce[variant, shift] = float(np.mean(errors))
            deltas = [s["coherence_delta_nll"] for s in stats if "coherence_delta_nll" in s]
            if deltas:
                table.coherence[variant, shift] = (
                    float(np.mean(deltas)),
                    sum(bool(s.get("coherence_flag")) for s in stats),
                    len(deltas),
                )
    if has_base:
        _gains(table, by_variant)
        _normalized(table, by_variant)
    return table


def _in_domain_shift(table: Table, group: list[Run]) -> str | None:
    trained = training_dataset(group[0])
    for shift in table.shifts:
        if table.datasets[shift] == trained:
            return shift
    return "in_domain" if "in_domain" in table.shifts else None


def _gains(table: Table, by_variant: dict[str, list[Run]]) -> None:
    """In-domain and out-of-distribution change vs base; OOD pools the other shifts' pairs
    (a pair-weighted mean; equal to the mean over shifts when they have equal pair counts)."""
    for variant, group in by_variant.items():
        home = _in_domain_shift(table, group)
        if home is None:
            continue
        table.in_domain[variant] = home
        away = [s for s in table.shifts if s != home]
        if not away:
            continue
        mats = {}
        for name, column, runs in (("adapter", "adapter_correct", group), ("base", "base_correct", table.runs[:1])):
            mats[name] = np.concatenate(
                [_matrix(runs, table.suite, s, column, _common(table.runs, table.suite, s)) for s in away], axis=1
            )
        ood = paired_difference(mats["adapter"], mats["base"], seeds_match=False)
        table.gains[variant] = (table.change[variant, home], ood)


def _normalized(table: Table, by_variant: dict[str, list[Run]]) -> None:
    """GENIES normalised generalization (Clymer et al. 2023, arXiv:2311.07723), as their
    code computes it (src/api/compute_generalization_metrics.py, `differential_elicitation`):

        (accuracy on target of the model trained on the source − base accuracy on target)
        / accuracy on target of a model trained on the target itself.

    Note the denominator is the target-tuned *accuracy*, not its gain over base (the
    paper's prose reads like a gain ratio; the released code divides by accuracy, and we
    follow the code). The target-tuned accuracy is the mean over every run here trained on
    the target's data (all their seeds); a variant gets a value only for shifts other than
    its own training data."""
    for shift in table.shifts:
        tuned = [r for r in table.runs if training_dataset(r) == table.datasets[shift]]
        if not tuned:
            continue
        keys = _common(table.runs, table.suite, shift)
        table.target_tuned[shift] = float(_matrix(tuned, table.suite, shift, "adapter_correct", keys).mean())
        for variant, group in by_variant.items():
            if training_dataset(group[0]) != table.datasets[shift] and table.target_tuned[shift] > 0:
                table.normalized[variant, shift] = (
                    table.accuracy[variant, shift].mean - table.base[shift].mean
                ) / table.target_tuned[shift]
