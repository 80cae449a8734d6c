"""Finding and loading finished STaR runs (`innerpo star` run directories, or STaR sweep cells).

A STaR run directory holds `star_config.json` and a `summary.json` with every iteration
(innerpo.star.report.is_complete); unfinished runs are left out and counted. Each
iteration's `iter-<i>/eval-<set>.jsonl` gives, per held-out question (by `qid`), the
scores the report pools: `rationale` (the greedy rationale right, 0/1), `direct`
(option likelihood, 0/1, multiple choice only) and the sampled `pass@1`, `pass@k`,
`maj@n` (innerpo.star.heldout).

The environments a run was made in (innerpo.train.environment) are every environment.json
under its directory: the run's own and those of its iterations' training runs.

A run's variant is what it trained with, `--star.method` or the strategy (`sft`, `dpo`),
plus the settings that vary among that label's runs other than the seed; its seeds are
what the report averages over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from innerpo.report.runs import ReportError, flat, variant_labels
from innerpo.star.report import is_complete
from innerpo.train.environment import FILENAME as ENVIRONMENT_FILE
from innerpo.train.environment import load as load_environments

IGNORED = {"star.seed", "star.method", "star.strategy", "output_dir"}


@dataclass
class StarRun:
    dir: Path
    config: dict
    """star_config.json as written by the run."""
    scores: dict[tuple[str, int], dict[str, dict[str, float]]] = field(default_factory=dict)
    """(set, iteration) -> {score: {qid: value}}."""
    variant: str = ""
    environments: list[dict] = field(default_factory=list)
    """Every recorded start under the run directory (its own, then its training runs')."""

    @property
    def seed(self) -> int:
        return self.config["star"]["seed"]

    @property
    def label(self) -> str:
        star = self.config["star"]
        return star.get("method") or star.get("strategy") or "sft"


def find_star_runs(dirs: list[str | Path]) -> tuple[list[Path], int]:
    """(finished STaR run directories under `dirs`, how many unfinished ones were left out)."""
    found, unfinished = [], 0
    for d in map(Path, dirs):
        if not d.is_dir():
            raise ReportError(f"{d}: not a directory")
        own = d / "star_config.json"
        for config in [own] if own.is_file() else sorted(d.rglob("star_config.json")):
            if config.parent in found:
                continue
            if is_complete(config.parent):
                found.append(config.parent)
            else:
                unfinished += 1
    return found, unfinished


def load_star_run(run_dir: Path) -> StarRun:
    try:
        config = json.loads((run_dir / "star_config.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
    except json.JSONDecodeError as e:
        raise ReportError(f"{run_dir}: unreadable star_config.json or summary.json ({e})") from e
    starts = [e for p in sorted(run_dir.rglob(ENVIRONMENT_FILE)) for e in load_environments(p.parent)]
    run = StarRun(run_dir, config, environments=starts)
    for row in summary:
        it = row["iteration"]
        for name in row.get("sets", {}):
            path = run_dir / f"iter-{it}" / f"eval-{name}.jsonl"
            if not path.is_file():
                raise ReportError(f"{path}: missing (summary.json lists set {name!r} at iteration {it})")
            run.scores[(name, it)] = _question_scores(path)
    return run


def _question_scores(path: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            qid = row["qid"]
            values = {"rationale": float(row["correct"])}
        except (json.JSONDecodeError, KeyError) as e:
            raise ReportError(f"{path}, line {i + 1}: not a held-out question row ({e})") from e
        if row.get("direct_correct") is not None:
            values["direct"] = float(row["direct_correct"])
        values.update(row.get("scores", {}))
        for score, value in values.items():
            out.setdefault(score, {})[qid] = value
    return out


def load_star_runs(dirs: list[str | Path]) -> tuple[list[StarRun], int]:
    paths, unfinished = find_star_runs(dirs)
    runs = [load_star_run(p) for p in paths]
    labels = variant_labels([r.label for r in runs], [flat(r.config) for r in runs], IGNORED)
    for run, label in zip(runs, labels):
        run.variant = label
    return runs, unfinished
