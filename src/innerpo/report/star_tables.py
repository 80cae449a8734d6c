"""The STaR report: per held-out set and iteration, each variant's accuracy over its seeds,
and paired differences against a baseline variant.

For every variant, held-out set, iteration and score (`rationale`, `direct`, `pass@1`,
`pass@k`, `maj@n`): the matrix `values[seed, question]` over the questions every seed of
the variant scored (held-out draws follow --star.eval_seed, so the seeds share them),
its mean and the crossed bootstrap interval of innerpo.report.stats (seeds and questions
resampled). Against the baseline: the paired difference on the questions both scored,
seeds paired when both have the same seeds. Written as star-report.md, star-report.csv
and one plot per held-out set (star-<set>.png: rationale accuracy against iteration,
one line per variant with its 95% interval).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from innerpo.io import atomic_path, write_atomic
from innerpo.report.render import environment_lines
from innerpo.report.runs import ReportError
from innerpo.report.star_runs import StarRun
from innerpo.report.stats import CONFIDENCE, N_RESAMPLES, Estimate, mean_ci, paired_difference

NOTE = (
    f"Accuracy per held-out set and STaR iteration (0 = the starting model), averaged over seeds and questions. "
    f"Brackets: {CONFIDENCE:.0%} percentile bootstrap interval ({N_RESAMPLES} resamples) resampling seeds and "
    "questions independently (every seed is scored on the same held-out questions); with one seed, questions "
    "only. Differences are paired question by question (and seed by seed when both have the same seeds). "
    "rationale: greedy rationale; direct: option likelihood; pass@1, pass@k, maj@n: from n sampled rationales."
)
Key = tuple[str, str, int, str]  # (variant, set, iteration, score)


@dataclass
class StarTable:
    variants: list[str]
    sets: list[str]
    iterations: list[int]
    scores: dict[str, list[str]]
    """set -> the scores every variant has for it."""
    seeds: dict[str, list[int]] = field(default_factory=dict)
    estimates: dict[Key, Estimate] = field(default_factory=dict)
    versus: dict[Key, Estimate] = field(default_factory=dict)
    baseline: str | None = None


def star_table(runs: list[StarRun], baseline: str | None) -> StarTable:
    groups: dict[str, list[StarRun]] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        groups.setdefault(run.variant, []).append(run)
    keys = set.intersection(*(set(r.scores) for r in runs))
    if not keys:
        raise ReportError("the STaR runs share no held-out set and iteration")
    sets = [s for s in dict.fromkeys(s for r in runs for s, _ in r.scores) if any(k[0] == s for k in keys)]
    iterations = sorted({i for _, i in keys})
    scores = {
        s: sorted(set.intersection(*(set(r.scores[k]) for r in runs for k in keys if k[0] == s)), key=_score_order)
        for s in sets
    }
    table = StarTable(list(groups), sets, iterations, scores, {v: [r.seed for r in g] for v, g in groups.items()})
    table.baseline = _baseline(baseline, groups)
    for v, group in groups.items():
        for s in sets:
            for it in iterations:
                for score in scores[s]:
                    qids = _common(group, s, it, score)
                    if qids:
                        table.estimates[(v, s, it, score)] = mean_ci(_matrix(group, s, it, score, qids))
                    if table.baseline and v != table.baseline:
                        base = groups[table.baseline]
                        qids = _common(group + base, s, it, score)
                        if qids:
                            seeds_match = table.seeds[v] == table.seeds[table.baseline]
                            table.versus[(v, s, it, score)] = paired_difference(
                                _matrix(group, s, it, score, qids), _matrix(base, s, it, score, qids), seeds_match
                            )
    return table


def _score_order(name: str) -> tuple:
    return (name != "rationale", name != "direct", not name.startswith("pass"), name)


def _baseline(name: str | None, groups: dict[str, list[StarRun]]) -> str | None:
    """The baseline variant: `name` itself, or the one variant whose runs' label is `name`."""
    if name in (None, "none"):
        return None
    if name in groups:
        return name
    matches = [v for v, g in groups.items() if g[0].label == name]
    return matches[0] if len(matches) == 1 else None


def _common(runs: list[StarRun], s: str, it: int, score: str) -> list[str]:
    sets = [set(r.scores[(s, it)].get(score, {})) for r in runs if (s, it) in r.scores]
    if len(sets) < len(runs):
        return []
    return sorted(set.intersection(*sets))


def _matrix(runs: list[StarRun], s: str, it: int, score: str, qids: list[str]) -> np.ndarray:
    return np.array([[r.scores[(s, it)][score][q] for q in qids] for r in runs], dtype=float)


def _cell(e: Estimate | None, points: bool = False) -> str:
    if e is None:
        return "–"
    scale, fmt = (100, "+.1f") if points else (1, ".3f")
    return f"{e.mean * scale:{fmt}} [{e.low * scale:{fmt}}, {e.high * scale:{fmt}}]"


def markdown(t: StarTable, runs: list[StarRun], command: str, unfinished: int, plots: list[str]) -> str:
    lines = ["# innerpo report: STaR", "", NOTE, "", f"Command: `{command}`", "", *environment_lines(runs)]
    if unfinished:
        lines += [f"{unfinished} unfinished STaR run(s) left out.", ""]
    lines += [f"Variants and seeds: {', '.join(f'{v} ({len(s)} seeds)' for v, s in t.seeds.items())}.", ""]
    head = "| variant | " + " | ".join(f"iter {i}" for i in t.iterations) + " |"
    rule = "|---|" + "---|" * len(t.iterations)
    for s in t.sets:
        lines += [f"## {s}", ""]
        if f"star-{s}.png" in plots:
            lines += [f"![{s}](star-{s}.png)", ""]
        for score in t.scores[s]:
            n = next((e.n_pairs for (v, ss, _, sc), e in t.estimates.items() if ss == s and sc == score), 0)
            lines += [f"### {score} accuracy ({n} questions)", "", head, rule]
            for v in t.variants:
                lines.append(
                    f"| {v} | " + " | ".join(_cell(t.estimates.get((v, s, i, score))) for i in t.iterations) + " |"
                )
            if t.versus:
                lines += ["", f"{score}: difference from {t.baseline}, points", "", head, rule]
                for v in t.variants:
                    if v != t.baseline:
                        cells = " | ".join(_cell(t.versus.get((v, s, i, score)), points=True) for i in t.iterations)
                        lines.append(f"| {v} − {t.baseline} | {cells} |")
            lines.append("")
    return "\n".join(lines)


def records(t: StarTable) -> list[dict]:
    rows = []
    for (v, s, it, score), e in t.estimates.items():
        d = t.versus.get((v, s, it, score))
        rows.append(
            {
                "variant": v,
                "set": s,
                "iteration": it,
                "score": score,
                "mean": e.mean,
                "ci_low": e.low,
                "ci_high": e.high,
                "seeds": e.n_seeds,
                "questions": e.n_pairs,
                "resampled": e.resampled.replace("pairs", "questions"),  # report.stats speaks of pairs
                "baseline": t.baseline if d else None,
                "diff": d.mean if d else None,
                "diff_ci_low": d.low if d else None,
                "diff_ci_high": d.high if d else None,
            }
        )
    return rows


def plot_sets(t: StarTable, out: Path) -> list[str]:
    """star-<set>.png per held-out set: rationale accuracy against iteration, a line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for s in t.sets:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for v in t.variants:
            pts = [
                (i, t.estimates[(v, s, i, "rationale")]) for i in t.iterations if (v, s, i, "rationale") in t.estimates
            ]
            ys = [e.mean for _, e in pts]
            err = [[y - e.low for y, (_, e) in zip(ys, pts)], [e.high - y for y, (_, e) in zip(ys, pts)]]
            ax.errorbar([i for i, _ in pts], ys, yerr=err, marker="o", capsize=3, label=v)
        ax.set_xticks(t.iterations)
        ax.set_xlabel("STaR iteration (0 = starting model)")
        ax.set_ylabel("rationale accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(s, fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_path(out / f"star-{s}.png") as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
        names.append(f"star-{s}.png")
    return names


def write_star_report(out: Path, runs: list[StarRun], baseline: str | None, command: str, unfinished: int) -> str:
    if not runs:
        raise ReportError("no finished STaR runs")
    t = star_table(runs, baseline)
    plots = plot_sets(t, out)
    text = markdown(t, runs, command, unfinished, plots)
    write_atomic(out / "star-report.md", text)
    write_atomic(out / "star-report.csv", pd.DataFrame(records(t)).to_csv(index=False))
    return text
