"""Accuracy against iteration, per held-out set: a markdown table, a PNG plot and summary.json in the run directory.

A summary row is `{"iteration" (or "preamble"), <training-data stats>, "sets": {set: metrics}}`;
a set's metrics name each score's `<score>_accuracy`, `_ci_low`, `_ci_high`, `_n` and, for
scores that are right or wrong per question, `_correct`
(`rationale`, `direct`, `pass@1`, `pass@k`, `maj@n`; innerpo.star.heldout).
"""

from __future__ import annotations

import json
from pathlib import Path

from innerpo.io import atomic_path, write_atomic

TRAINING_COLUMNS = (
    ("train rows", "train_rows"),
    ("correct samples", "correct_samples"),
    ("rationalization asked", "rationalization_asked"),
    ("rationalized", "rationalized"),
)


def score_names(metrics: dict) -> list[str]:
    """The scores a set's metrics hold, in the order `rationale`, `direct`, then sampled ones."""
    names = [k.removesuffix("_accuracy") for k in metrics if k.endswith("_accuracy")]
    return sorted(names, key=lambda n: (n != "rationale", n != "direct", n))


def _cell(metrics: dict, name: str) -> str:
    """`0.417 (25/60) [0.297, 0.547]`: the accuracy, the count when the score is right/wrong, the 95% CI."""
    value = metrics.get(f"{name}_accuracy")
    if value is None:
        return "–"
    count = f" ({metrics[f'{name}_correct']}/{metrics[f'{name}_n']})" if f"{name}_correct" in metrics else ""
    return f"{value:.3f}{count} [{metrics[f'{name}_ci_low']:.3f}, {metrics[f'{name}_ci_high']:.3f}]"


def table(rows: list[dict], key: str = "iteration") -> str:
    """One section per held-out set (a line per iteration or preamble: each score with its
    95% CI), then the training data of each iteration."""
    sets = list(rows[0]["sets"]) if rows else []
    parts = []
    for name in sets:
        scores = list(dict.fromkeys(s for r in rows for s in score_names(r["sets"].get(name, {}))))
        n = rows[-1]["sets"][name].get("rationale_n", "")
        lines = [
            f"## {name} ({n} questions)",
            "",
            f"| {key} | " + " | ".join(f"{s} acc. [95% CI]" for s in scores) + " | degenerate |",
            "|---|" + "---|" * (len(scores) + 1),
        ]
        for r in rows:
            m = r["sets"].get(name, {})
            cells = " | ".join(_cell(m, s) for s in scores)
            lines.append(f"| {r[key]!s} | {cells} | {m.get('eval_degenerate', '')} |")
        parts.append("\n".join(lines))
    if key == "iteration":
        lines = [
            "## training data",
            "",
            "| iteration | " + " | ".join(c for c, _ in TRAINING_COLUMNS) + " |",
            "|---|" + "---|" * len(TRAINING_COLUMNS),
        ]
        for r in rows[1:]:
            lines.append(f"| {r['iteration']} | " + " | ".join(str(r.get(k, "–")) for _, k in TRAINING_COLUMNS) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def plot(rows: list[dict], path: Path, title: str, chance: dict[str, float | None] | None = None) -> None:
    """accuracy.png: one panel per held-out set, each score against iteration with its 95% CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(rows[0]["sets"])
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.5), squeeze=False)
    its = [r["iteration"] for r in rows]
    for ax, name in zip(axes[0], sets):
        for score in dict.fromkeys(s for r in rows for s in score_names(r["sets"][name])):
            sel = [(r["iteration"], r["sets"][name]) for r in rows if f"{score}_accuracy" in r["sets"][name]]
            ys = [m[f"{score}_accuracy"] for _, m in sel]
            low = [y - m[f"{score}_ci_low"] for y, (_, m) in zip(ys, sel)]
            high = [m[f"{score}_ci_high"] - y for y, (_, m) in zip(ys, sel)]
            err = [low, high]
            ax.errorbar([i for i, _ in sel], ys, yerr=err, marker="o", capsize=3, label=score)
        if chance and chance.get(name) is not None:
            ax.axhline(chance[name], color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xticks(its)
        ax.set_xlabel("STaR iteration (0 = base model)")
        ax.set_ylabel("held-out accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_summary(
    run_dir: Path, rows: list[dict], title: str, key: str = "iteration", chance: dict | None = None
) -> str:
    text = table(rows, key)
    write_atomic(run_dir / "accuracy.md", f"# {title}\n\n{text}\n")
    write_atomic(run_dir / "summary.json", json.dumps(rows, indent=2))
    if key == "iteration":
        plot(rows, run_dir / "accuracy.png", title, chance)
    return text


def is_complete(run_dir: Path) -> bool:
    """Whether `run_dir` holds a finished STaR training run: its summary has every iteration."""
    run_dir = Path(run_dir)
    if not (run_dir / "star_config.json").is_file() or not (run_dir / "summary.json").is_file():
        return False
    try:
        iterations = json.loads((run_dir / "star_config.json").read_text())["star"]["iterations"]
        rows = json.loads((run_dir / "summary.json").read_text())
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    return bool(rows) and rows[-1].get("iteration") == iterations
