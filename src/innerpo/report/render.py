"""report.md, report.csv and report.json from the aggregated tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from innerpo.io import write_atomic
from innerpo.report.aggregate import Table, training_dataset
from innerpo.report.runs import Run
from innerpo.report.stats import CONFIDENCE, N_RESAMPLES, Estimate
from innerpo.train.environment import key as environment_key
from innerpo.train.environment import summary as environment_summary

METHOD_NOTE = (
    f"Accuracy: share of pairs whose chosen completion has the higher mean per-token log-prob, averaged over "
    f"seeds and pairs. Brackets: {CONFIDENCE:.0%} percentile bootstrap interval (scipy.stats.bootstrap, "
    f"{N_RESAMPLES} resamples) that resamples seeds and pairs independently (crossed design: every seed is scored "
    f"on the same pairs); with one seed, pairs only. Changes and differences are paired: computed pair by pair on "
    f"the same pairs, with the same resampling. Calibration (mean probability of the chosen completion, Brier "
    f"score) is averaged and resampled the same way."
)


def _pp(e: Estimate) -> str:
    return f"{100 * e.mean:+.1f} [{100 * e.low:+.1f}, {100 * e.high:+.1f}]"


def caption(table: Table, command: str, sweep_commands: list[str]) -> str:
    trained = sorted({training_dataset(r) for r in table.runs})
    steps = sorted({str(r.config.training.max_steps or f"{r.config.training.epochs:g} epoch(s)") for r in table.runs})
    pairs = sorted({str(r.config.data.max_train_pairs) for r in table.runs})
    shifts = ", ".join(f"{s} = `{table.datasets[s]}`" for s in table.shifts)
    n = sorted(set(table.n_pairs.values()))
    text = (
        f"*Base model `{table.model}`; trained on {', '.join(f'`{t}`' for t in trained)} "
        f"(at most {'/'.join(pairs)} pairs, {'/'.join(steps)} optimizer steps); shifts: {shifts}; "
        f"{'/'.join(map(str, n))} pairs per shift (pairs every run scored). Produced by `{command}`"
    )
    if sweep_commands:
        text += " from runs of " + "; ".join(f"`{c}`" for c in sweep_commands)
    return text + ".*"


def environments(runs: list[Run]) -> list[tuple[str, list[Run]]]:
    """(one-line summary, runs) per distinct environment the runs were made in (every start
    of a resumed run counts), most runs first; runs that record none come last as `None`."""
    groups: dict[str | None, tuple[str | None, list[Run]]] = {}
    for run in runs:
        for entry in run.environments or [None]:
            k = None if entry is None else environment_key(entry)
            line, members = groups.setdefault(k, (None if entry is None else environment_summary(entry), []))
            if run not in members:
                members.append(run)
    return sorted(groups.values(), key=lambda g: (g[0] is None, -len(g[1])))


def _all_runs(tables: list[Table]) -> list[Run]:
    """Each run once (a run evaluated on several suites sits in several tables)."""
    return list({id(r): r for t in tables for r in t.runs}.values())


def environment_lines(runs: list[Run]) -> list[str]:
    groups = environments(runs)
    if len(groups) == 1:
        line = groups[0][0] or "not recorded (runs made before innerpo wrote environment.json)"
        return [f"Environment of all {len(runs)} runs: {line}.", ""]
    lines = [
        f"**The {len(runs)} runs were not all made in one recorded environment** (a bf16 score can move "
        "by a rounding step between versions or machines):",
        "",
    ]
    for line, members in groups:
        where = line or "no environment.json (made before innerpo recorded environments)"
        lines.append(f"- {len(members)} run(s): {where}; e.g. `{members[0].dir}`")
    return [*lines, ""]


def markdown(tables: list[Table], command: str, sweep_commands: list[str], plots: dict[str, list[str]]) -> str:
    runs = _all_runs(tables)
    lines = ["# innerpo report", "", METHOD_NOTE, "", *environment_lines(runs)]
    for t in tables:
        title = f"suite `{t.suite}`" + (f", model `{t.model}`" if len({x.model for x in tables}) > 1 else "")
        seeds = {v: t.accuracy[v, t.shifts[0]].n_seeds for v in t.variants}
        lines += [f"## Preference accuracy: {title}", ""]
        head = "| method | seeds | " + " | ".join(f"{s} (n={t.n_pairs[s]})" for s in t.shifts) + " |"
        lines += [head, "|" + "---|" * (len(t.shifts) + 2)]
        if t.base:
            lines.append(
                "| base | – | "
                + " | ".join(f"{t.base[s].mean:.3f} [{t.base[s].low:.3f}, {t.base[s].high:.3f}]" for s in t.shifts)
                + " |"
            )
        for v in t.variants:
            cells = []
            for s in t.shifts:
                a = t.accuracy[v, s]
                cell = f"{a.mean:.3f} [{a.low:.3f}, {a.high:.3f}]"
                if (v, s) in t.change:
                    cell += f"<br>{_pp(t.change[v, s])} pp vs base"
                if (v, s) in t.coherence:
                    d, k, n = t.coherence[v, s]
                    cell += f"<br>ΔNLL {d:+.2f}, {k}/{n} flagged"
                cells.append(cell)
            lines.append(f"| {v} | {seeds[v]} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Each cell: accuracy [95% CI]; change vs base in points [95% CI]; coherence: mean over seeds of the "
            "adapter − base chosen-completion NLL per token, and seeds flagged incoherent.",
            "",
        ]
        if t.versus:
            lines += [f"### Paired difference vs `{t.baseline}` (points; * = 95% CI excludes 0)", ""]
            lines += ["| method | " + " | ".join(t.shifts) + " |", "|" + "---|" * (len(t.shifts) + 1)]
            for v in t.variants:
                if v == t.baseline:
                    continue
                cells = [f"{_pp(t.versus[v, s])}{' *' if t.versus[v, s].excludes_zero else ''}" for s in t.shifts]
                lines.append(f"| {v} | " + " | ".join(cells) + " |")
            resampled = {e.resampled for e in t.versus.values()}
            lines += [
                "",
                f"Resampled: {', '.join(sorted(resampled))}; seeds are paired when both methods have the same seeds.",
                "",
            ]
        elif t.note:
            lines += [t.note, ""]
        if t.gains:
            lines += [
                "### In-domain and out-of-distribution gain over base (points)",
                "",
                "| method | in-domain shift | in-domain gain | OOD gain (other shifts' pairs pooled) |",
                "|---|---|---|---|",
            ]
            lines += [f"| {v} | {t.in_domain[v]} | {_pp(i)} | {_pp(o)} |" for v, (i, o) in t.gains.items()]
            lines.append("")
        if t.normalized:
            lines += [
                "### GENIES normalised generalization",
                "",
                "(target accuracy − base target accuracy) / accuracy of runs trained on the target (Clymer "
                "et al. 2023, "
                "definition as in the GENIES code); target-tuned accuracy: "
                + ", ".join(f"{s} {a:.3f}" for s, a in t.target_tuned.items()),
                "",
                "| method | " + " | ".join(t.target_tuned) + " |",
                "|" + "---|" * (len(t.target_tuned) + 1),
            ]
            for v in t.variants:
                vals = [f"{t.normalized[v, s]:+.3f}" if (v, s) in t.normalized else "–" for s in t.target_tuned]
                lines.append(f"| {v} | " + " | ".join(vals) + " |")
            lines.append("")
        if t.calibration:
            lines += _calibration(t)
        for name in plots.get(t.suite, []):
            lines += [f"![{name}]({name})", ""]
        lines += [caption(t, command, sweep_commands), ""]
    return "\n".join(lines)


def _est(e: Estimate) -> str:
    return f"{e.mean:.3f} [{e.low:.3f}, {e.high:.3f}]"


def _calibration(t: Table) -> list[str]:
    """Mean probability of the chosen completion, Brier score and RMS calibration error per
    shift; then the paired Brier difference vs the baseline."""
    lines = [
        "### Calibration",
        "",
        "p = probability the model gives the chosen completion (softmax over the two completions' mean per-token "
        "log-probs, the scores accuracy compares). Each cell: mean p [95% CI]; Brier = mean (1 − p)² [95% CI] "
        "(same crossed bootstrap as accuracy); RMSCE = binned RMS calibration error of the top-label "
        "confidence, mean over seeds (no interval: not a per-pair mean). Lower Brier and RMSCE are better.",
        "",
        "| method | " + " | ".join(t.shifts) + " |",
        "|" + "---|" * (len(t.shifts) + 1),
    ]
    for v in ["base"] * bool(t.base) + t.variants:
        cells = []
        for s in t.shifts:
            if (v, s, "p_chosen") not in t.calibration:
                cells.append("–")
                continue
            error = t.rmsce.get((v, s))
            cells.append(
                f"p {_est(t.calibration[v, s, 'p_chosen'])}<br>Brier {_est(t.calibration[v, s, 'brier'])}"
                f"<br>RMSCE {'–' if error is None else f'{error:.3f}'}"
            )
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines.append("")
    if t.calibration_versus:
        lines += [
            f"Brier score, paired difference vs `{t.baseline}` (negative: better calibrated than the baseline; "
            "* = 95% CI excludes 0)",
            "",
            "| method | " + " | ".join(t.shifts) + " |",
            "|" + "---|" * (len(t.shifts) + 1),
        ]
        for v in t.variants:
            if v == t.baseline:
                continue
            cells = []
            for s in t.shifts:
                e = t.calibration_versus.get((v, s, "brier"))
                star = " *" if e is not None and e.excludes_zero else ""
                cells.append("–" if e is None else f"{e.mean:+.3f} [{e.low:+.3f}, {e.high:+.3f}]{star}")
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def records(tables: list[Table]) -> list[dict]:
    """One row per (suite, model, method, shift); fractions, not points."""
    rows = []
    for t in tables:
        for v in ["base"] * bool(t.base) + t.variants:
            for s in t.shifts:
                est = t.base[s] if v == "base" else t.accuracy[v, s]
                row = {
                    "suite": t.suite,
                    "model": t.model,
                    "method": v,
                    "shift": s,
                    "dataset": t.datasets[s],
                    "n_seeds": est.n_seeds if v != "base" else 0,
                    "n_pairs": est.n_pairs,
                    "accuracy": est.mean,
                    "accuracy_low": est.low,
                    "accuracy_high": est.high,
                    "resampled": est.resampled,
                }
                for prefix, table in (("change_vs_base", t.change), ("diff_vs_baseline", t.versus)):
                    e = table.get((v, s))
                    row.update(
                        {
                            prefix: e.mean if e else None,
                            f"{prefix}_low": e.low if e else None,
                            f"{prefix}_high": e.high if e else None,
                            f"{prefix}_excludes_zero": e.excludes_zero if e else None,
                        }
                    )
                row["baseline"] = t.baseline
                d = t.coherence.get((v, s))
                row.update({"delta_nll": d[0] if d else None, "seeds_flagged": d[1] if d else None})
                row["normalized_generalization"] = t.normalized.get((v, s))
                for metric in ("p_chosen", "brier"):
                    e = t.calibration.get((v, s, metric))
                    row.update({metric: e.mean if e else None, f"{metric}_low": e.low if e else None})
                    row[f"{metric}_high"] = e.high if e else None
                    d = t.calibration_versus.get((v, s, metric))
                    row.update({f"{metric}_diff_vs_baseline": d.mean if d else None})
                    row[f"{metric}_diff_vs_baseline_low"] = d.low if d else None
                    row[f"{metric}_diff_vs_baseline_high"] = d.high if d else None
                row["rms_calibration_error"] = t.rmsce.get((v, s))
                rows.append(row)
    return rows


def write(out: Path, tables: list[Table], command: str, sweep_commands: list[str], plots: dict[str, list[str]]) -> None:
    rows = records(tables)
    write_atomic(out / "report.md", markdown(tables, command, sweep_commands, plots))
    write_atomic(out / "report.csv", pd.DataFrame(rows).to_csv(index=False))
    meta = {
        "command": command,
        "sweep_commands": sweep_commands,
        "confidence": CONFIDENCE,
        "n_resamples": N_RESAMPLES,
        "method": METHOD_NOTE,
        "runs": sorted({str(r.dir) for t in tables for r in t.runs}),
        "environments": [
            {"environment": line, "runs": sorted(str(r.dir) for r in members)}
            for line, members in environments(_all_runs(tables))
        ],
        "gains": [
            {
                "suite": t.suite,
                "model": t.model,
                "method": v,
                "in_domain_shift": t.in_domain[v],
                "in_domain": vars(i),
                "ood": vars(o),
            }
            for t in tables
            for v, (i, o) in t.gains.items()
        ],
        "rows": rows,
    }
    write_atomic(out / "report.json", json.dumps(meta, indent=2, default=str))
