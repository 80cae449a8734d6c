"""PNG figures of a report (matplotlib, Agg backend: no display needed).

- `accuracy-<suite>.png`: accuracy per shift, one marker per method (and base) with its
  95% CI bar;
- `curves-<suite>.png`: training loss, reward margin and periodic eval accuracy against
  step, the mean over seeds as a line and mean ± one standard deviation as a band;
- `gain-<suite>.png`: out-of-distribution gain against in-domain gain over base, one
  point per method with 95% CI bars in both directions (the figure that answers "does
  the preference carry beyond the training distribution?").
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from innerpo.io import atomic_path  # noqa: E402
from innerpo.report.aggregate import Table  # noqa: E402

CURVES = (
    ("loss", "training loss"),
    ("rewards/margins", "reward margin (nats)"),
    ("eval/accuracy", "periodic eval accuracy"),
)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(text).stem if text.endswith((".yaml", ".yml")) else text).strip("-")


def accuracy_plot(t: Table, path: Path) -> None:
    rows = (["base"] if t.base else []) + t.variants
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(t.shifts)), 4.2))
    x = np.arange(len(t.shifts))
    width = 0.8 / len(rows)
    for i, v in enumerate(rows):
        ests = [t.base[s] if v == "base" else t.accuracy[v, s] for s in t.shifts]
        mean = np.array([e.mean for e in ests])
        err = np.array([[e.mean - e.low for e in ests], [e.high - e.mean for e in ests]])
        ax.errorbar(
            x - 0.4 + width * (i + 0.5),
            mean,
            yerr=err,
            fmt="o" if v != "base" else "s",
            capsize=3,
            label=v if v == "base" else f"{v} ({t.accuracy[v, t.shifts[0]].n_seeds} seeds)",
            color="0.4" if v == "base" else None,
        )
    ax.set_xticks(x, [f"{s}\n(n={t.n_pairs[s]})" for s in t.shifts], fontsize=8)
    ax.set_ylabel("preference accuracy (95% CI)")
    ax.axhline(0.5, color="0.8", lw=0.8, ls="--")
    ax.set_title(f"{t.suite}: accuracy per shift ({t.model})", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    _save(fig, path)


def curves_plot(t: Table, path: Path) -> bool:
    """False (and no file) when no run logged any of the curves."""
    frames = []
    for r in t.runs:
        for row in r.metrics:
            frames.append({"variant": r.variant, "seed": r.seed, **{k: row.get(k) for k in ("step", *dict(CURVES))}})
    data = pd.DataFrame(frames)
    present = [(k, label) for k, label in CURVES if k in data and data[k].notna().any()]
    if data.empty or not present:
        return False
    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], present):
        for v in t.variants:
            rows = data[(data["variant"] == v) & data[key].notna()]
            if rows.empty:
                continue
            g = rows.groupby("step")[key]
            mean, sd = g.mean(), g.std().fillna(0.0)
            (line,) = ax.plot(mean.index, mean.to_numpy(), label=f"{v} ({rows['seed'].nunique()} seeds)")
            ax.fill_between(
                mean.index, (mean - sd).to_numpy(), (mean + sd).to_numpy(), alpha=0.2, color=line.get_color()
            )
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(label)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{t.suite}: training curves, mean ± 1 sd over seeds", fontsize=10)
    _save(fig, path)
    return True


def gain_plot(t: Table, path: Path) -> bool:
    if not t.gains:
        return False
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    for v, (i, o) in t.gains.items():
        ax.errorbar(
            100 * i.mean,
            100 * o.mean,
            xerr=[[100 * (i.mean - i.low)], [100 * (i.high - i.mean)]],
            yerr=[[100 * (o.mean - o.low)], [100 * (o.high - o.mean)]],
            fmt="o",
            capsize=3,
            label=v,
        )
    ax.axhline(0, color="0.7", lw=0.8)
    ax.axvline(0, color="0.7", lw=0.8)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    ax.plot(
        [min(x0, y0), max(x1, y1)],
        [min(x0, y0), max(x1, y1)],
        color="0.85",
        lw=0.8,
        ls="--",
        label="OOD gain = in-domain gain",
    )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("in-domain gain over base (points, 95% CI)")
    ax.set_ylabel("out-of-distribution gain over base (points, 95% CI)")
    ax.set_title(f"{t.suite}: does the preference carry? ({t.model})", fontsize=10)
    ax.legend(fontsize=7)
    _save(fig, path)
    return True


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def write_plots(out: Path, tables: list[Table]) -> dict[str, list[str]]:
    """All figures into `out`; returns {suite: [file names]} for the markdown."""
    made: dict[str, list[str]] = {}
    several_models = len({t.model for t in tables}) > 1
    for t in tables:
        tag = slug(t.suite) + (f"-{slug(t.model)}" if several_models else "")
        names = []
        accuracy_plot(t, out / f"accuracy-{tag}.png")
        names.append(f"accuracy-{tag}.png")
        if gain_plot(t, out / f"gain-{tag}.png"):
            names.append(f"gain-{tag}.png")
        if curves_plot(t, out / f"curves-{tag}.png"):
            names.append(f"curves-{tag}.png")
        made.setdefault(t.suite, []).extend(names)
    return made
