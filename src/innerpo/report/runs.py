"""Finding and loading finished runs: config, evaluations (summary + per-pair rows), curves.

A run directory is any directory with `config.yaml` and `summary.json` (an `innerpo
train` run, a sweep cell, or a run trained by hand). Its evaluations are the
training-time one (`RUN/`) and each `RUN/eval-<suite>/` written by `innerpo eval`; when
both cover the same suite the training-time one is used. Directories given to the
report are searched recursively, so a sweep directory brings all its cells.

Each run gets a *variant* label: its method name, plus the settings that differ between
runs of the same method (other than the seed), e.g. `dpo lr=5e-05`. Seeds of one variant
are what the report averages over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from innerpo.config import flatten, to_dict
from innerpo.eval.pair_results import FILENAME as PAIRS_FILE
from innerpo.train.config import TrainConfig
from innerpo.train.environment import load as load_environments
from innerpo.train.run_dir import load_config

IGNORED = {"training.seed", "output_dir", "config", "method_name"}


class ReportError(ValueError):
    """Nothing to report, or a run directory that cannot be read."""


@dataclass
class Evaluation:
    suite: str
    summary: dict
    pairs: pd.DataFrame
    path: Path


@dataclass
class Run:
    dir: Path
    config: TrainConfig
    evaluations: dict[str, Evaluation]
    metrics: list[dict] = field(default_factory=list)
    variant: str = ""
    environments: list[dict] = field(default_factory=list)  # each start's (innerpo.train.environment)

    @property
    def seed(self) -> int:
        return self.config.training.seed


def find_run_dirs(dirs: list[str | Path]) -> list[Path]:
    found = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise ReportError(f"{d}: not a directory")
        candidates = [d] if _is_run(d) else sorted(p.parent for p in d.rglob("summary.json") if _is_run(p.parent))
        found += [c for c in candidates if c not in found]
    if not found:
        raise ReportError(f"no finished runs (config.yaml + summary.json) under {', '.join(map(str, dirs))}")
    return found


def _is_run(d: Path) -> bool:
    return (d / "config.yaml").is_file() and (d / "summary.json").is_file()


def load_run(run_dir: Path) -> Run:
    try:
        cfg = load_config(run_dir)
    except (ValueError, TypeError) as e:
        raise ReportError(f"{run_dir / 'config.yaml'}: {e}") from e
    evaluations = {}
    for where in [run_dir, *sorted(run_dir.glob("eval-*"))]:
        if not (where / "summary.json").is_file():
            continue
        if not (where / PAIRS_FILE).is_file():
            raise ReportError(
                f"{where}: summary.json without {PAIRS_FILE} (evaluated before per-pair results existed); "
                f"re-run `innerpo eval {run_dir}`"
            )
        summary = json.loads((where / "summary.json").read_text())
        suite = summary.get("suite")
        if not suite or "shifts" not in summary:
            raise ReportError(f"{where / 'summary.json'}: missing field 'suite' or 'shifts'")
        if suite not in evaluations:
            evaluations[suite] = Evaluation(suite, summary, pd.read_parquet(where / PAIRS_FILE), where)
    metrics_path = run_dir / "metrics.jsonl"
    metrics = (
        [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
        if metrics_path.is_file()
        else []
    )
    return Run(run_dir, cfg, evaluations, metrics, environments=load_environments(run_dir))


def flat(values: dict) -> dict:
    """config.flatten with lists as tuples, so settings can be compared and grouped."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in flatten(values).items()}


def label_variants(runs: list[Run]) -> None:
    """Set each run's `variant`: method name + settings varying among that method's runs."""
    labels = variant_labels([r.config.method_name for r in runs], [flat(to_dict(r.config)) for r in runs], IGNORED)
    for run, label in zip(runs, labels):
        run.variant = label


def variant_labels(methods: list[str], flats: list[dict], ignored: set[str]) -> list[str]:
    """Per run: its method, then `key=value` for each setting (not in `ignored`) that varies
    among the runs of that method."""
    by_method: dict[str, list[int]] = {}
    for i, method in enumerate(methods):
        by_method.setdefault(method, []).append(i)
    labels = [""] * len(methods)
    for method, group in by_method.items():
        keys = sorted(
            k
            for k in set().union(*(flats[i] for i in group))
            if k not in ignored and len({repr(flats[i].get(k)) for i in group}) > 1
        )
        for i in group:
            labels[i] = " ".join([method, *(f"{_short(k, keys)}={_value(k, flats[i].get(k))}" for k in keys)])
    return labels


def _short(key: str, keys: list[str]) -> str:
    tail = key.rsplit(".", 1)[-1]
    return tail if sum(k.rsplit(".", 1)[-1] == tail for k in keys) == 1 else key


def _value(key: str, value) -> str:
    if key == "data.dataset" and isinstance(value, str):
        return (
            value.split(":", 1)[1] if value.startswith("genies:") else Path(value).stem if Path(value).suffix else value
        )
    return f"{value:g}" if isinstance(value, float) else str(value)


def load_runs(dirs: list[str | Path]) -> list[Run]:
    runs = [load_run(d) for d in find_run_dirs(dirs)]
    label_variants(runs)
    return runs
