"""`innerpo sweep FILE --check`: what every cell would do, found without training or writing.

For each cell, in grid order:

- `done`: its run directory holds summary.json, trained with the cell's settings (a
  finished cell trained with other settings is refused: the sweep would stop on it);
- `run` / `continue` / `restart`: not finished; it starts afresh, continues from the
  checkpoint of a half-finished attempt with its own settings, or discards an attempt
  it cannot continue (innerpo.experiments.runner.prepare_cell decides the same way);
- `refused`: `innerpo train` (a STaR cell: `innerpo star`, innerpo.experiments.star_cell)
  would refuse it before writing anything. The reason is
  what `innerpo.train.validate.validate_train` raises: settings and their ranges, the
  method as `innerpo.methods.build.build_method` builds it (every refusal it has), the
  layer spec against the model's depth, every row of the training data and every row of
  every shift of the eval suite (GENIES paths included), each read from disk.

Validation does not depend on the seed or the output directory, so cells differing only
in seed are validated once (their `family`, as the workers group them), and each
model's tokenizer is loaded once for the whole check. Nothing here writes: not the sweep
directory, not its lock, not a cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from innerpo.config import flatten, to_dict
from innerpo.errors import InputError
from innerpo.experiments import star_cell
from innerpo.experiments.cells import Cell
from innerpo.experiments.executors import family
from innerpo.experiments.runner import is_finished, resumable
from innerpo.io import is_locked
from innerpo.train.run_dir import load_config

LOCK = "sweep.lock"
"""Held in the sweep directory by the `innerpo sweep` that drives it (innerpo.io.locked)."""

STATES = ("run", "continue", "restart", "done", "refused")


@dataclass(frozen=True)
class CellCheck:
    cell: Cell
    state: str
    """One of STATES."""
    detail: str = ""
    """Why it is refused, which checkpoint it continues from, or what it discards."""

    @property
    def line(self) -> str:
        text = {
            "run": "would run",
            "continue": "would continue",
            "restart": "would run again from scratch",
            "done": "already done",
            "refused": "REFUSED",
        }[self.state]
        return f"{self.cell.name}: {text}" + (f": {self.detail}" if self.detail else "")


def check_cells(grid: list[Cell], progress=None) -> list[CellCheck]:
    """Every cell's CellCheck; `progress(check)` is called as each one is decided."""
    verdicts: dict[str, str | None] = {}
    out = []
    with _one_tokenizer_per_model():
        for cell in grid:
            result = _check(cell, verdicts)
            out.append(result)
            if progress is not None:
                progress(result)
    return out


@contextlib.contextmanager
def _one_tokenizer_per_model():
    """While checking, `innerpo.models.load.load_tokenizer` (which validate_train calls for
    every family) returns one tokenizer per model config: loading one parses its whole
    vocabulary (~0.3 s), and validation only reads it."""
    from innerpo.models import load

    original, memo = load.load_tokenizer, {}

    def cached(cfg):
        key = json.dumps(to_dict(cfg), sort_keys=True, default=str)
        if key not in memo:
            memo[key] = original(cfg)
        return memo[key]

    load.load_tokenizer = cached
    try:
        yield
    finally:
        load.load_tokenizer = original


def _check(cell: Cell, verdicts: dict[str, str | None]) -> CellCheck:
    if is_finished(cell.dir):
        diff = finished_mismatch(cell)
        if diff:
            return CellCheck(
                cell,
                "refused",
                f"finished with other settings ({diff}); choose another sweep directory or delete this cell to "
                "re-train it",
            )
        return CellCheck(cell, "done")
    key = family(cell)
    if key not in verdicts:
        verdicts[key] = star_cell.refusal(cell.config) if star_cell.is_star(cell.config) else refusal(cell.config)
    if verdicts[key] is not None:
        return CellCheck(cell, "refused", verdicts[key])
    if not cell.dir.exists():
        return CellCheck(cell, "run")
    checkpoint = resumable(cell)
    if checkpoint is not None:
        return CellCheck(cell, "continue", f"from {checkpoint.name} of an earlier attempt")
    return CellCheck(cell, "restart", "an unfinished earlier attempt is discarded")


def refusal(cfg) -> str | None:
    """What `innerpo train` would refuse `cfg` for before writing anything, or None.

    The output directory is left out: a sweep prepares each cell's directory itself
    (innerpo.experiments.runner.prepare_cell), so the adapter of an earlier attempt is
    not a reason to refuse."""
    from innerpo.train.validate import validate_train

    try:
        validate_train(dataclasses.replace(cfg, output_dir=None))
    except InputError as e:
        return str(e)
    return None


def finished_mismatch(cell: Cell) -> str | None:
    """For a finished cell: the settings its saved config differs in from the cell's
    (`key: saved -> planned; ...`, at most five), or None when they agree."""
    star = star_cell.is_star(cell.config)
    saved = _comparable(star_cell.saved_settings(cell.dir) if star else flatten(to_dict(load_config(cell.dir))))
    planned = _comparable(flatten(to_dict(cell.config)))
    diff = [
        f"{k}: {saved.get(k)!r} -> {planned.get(k)!r}"
        for k in sorted(set(saved) | set(planned))
        if saved.get(k) != planned.get(k)
    ]
    return "; ".join(diff[:5]) or None


def _comparable(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in ("output_dir", "config")}


def sweep_busy(sweep_dir: Path) -> bool:
    """Whether another `innerpo sweep` drives this directory now (it holds the lock)."""
    return is_locked(Path(sweep_dir) / LOCK)


def summary_line(checks: list[CellCheck]) -> str:
    counts = {s: sum(c.state == s for c in checks) for s in STATES}
    return f"{len(checks)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
