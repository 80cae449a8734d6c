"""Accuracy against iteration: a markdown table, a PNG plot and summary.json in the run directory."""

from __future__ import annotations

import json
from pathlib import Path

from innerpo.io import atomic_path, write_atomic


def _cell(row: dict, name: str) -> str:
    value = row.get(f"{name}_accuracy")
    if value is None:
        return "–"
    return f"{value:.3f} [{row[f'{name}_ci_low']:.3f}, {row[f'{name}_ci_high']:.3f}]"


def table(rows: list[dict], key: str = "iteration") -> str:
    """One line per iteration (or preamble): accuracies with 95% CIs and the data it trained on."""
    lines = [
        f"| {key} | n | rationale acc. [95% CI] | direct acc. [95% CI] | degenerate | train rows | correct samples | rationalized |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r[key]!s} | {r.get('rationale_n', '')} | {_cell(r, 'rationale')} | {_cell(r, 'direct')} | "
            f"{r.get('eval_degenerate', '')} | {r.get('train_rows', '–')} | {r.get('correct_samples', '–')} | {r.get('rationalized', '–')} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str, chance: float | None = None) -> None:
    """accuracy.png: rationale and direct accuracy per iteration with their 95% CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    its = [r["iteration"] for r in rows]
    for name, marker in (("rationale", "o"), ("direct", "s")):
        if any(r.get(f"{name}_accuracy") is not None for r in rows):
            sel = [r for r in rows if r.get(f"{name}_accuracy") is not None]
            ys = [r[f"{name}_accuracy"] for r in sel]
            err = [
                [y - r[f"{name}_ci_low"] for y, r in zip(ys, sel)],
                [r[f"{name}_ci_high"] - y for y, r in zip(ys, sel)],
            ]
            ax.errorbar([r["iteration"] for r in sel], ys, yerr=err, marker=marker, capsize=3, label=f"{name} accuracy")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(its)
    ax.set_xlabel("STaR iteration (0 = base model)")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_summary(
    run_dir: Path, rows: list[dict], title: str, key: str = "iteration", chance: float | None = None
) -> str:
    text = table(rows, key)
    write_atomic(run_dir / "accuracy.md", f"# {title}\n\n{text}\n")
    write_atomic(run_dir / "summary.json", json.dumps(rows, indent=2))
    if key == "iteration":
        plot(rows, run_dir / "accuracy.png", title, chance)
    return text
