"""`innerpo sweep`: plan the grid, skip finished cells, run the rest, record every state.

Idempotent: a cell whose run directory holds summary.json is skipped; any other cell
(never run, half-finished, failed, or new in the file) runs from scratch. A finished cell
trained with settings that differ from the sweep file's stops the sweep before anything
runs (rename `output_dir`, or delete that cell, to re-train it).
"""

from __future__ import annotations

import time
from collections import Counter

import yaml

from innerpo.config import to_dict
from innerpo.experiments.cells import Cell
from innerpo.experiments.manifest import Manifest
from innerpo.experiments.runner import reference_note
from innerpo.experiments.sweep_file import SweepFileError, SweepSpec, cells
from innerpo.io import write_atomic
from innerpo.train.run_dir import load_config


def run_sweep(spec: SweepSpec, executor, command: str = "") -> dict[str, str]:
    """Run the sweep's unfinished cells on `executor`; returns {cell name: error} of the failures."""
    grid = cells(spec)
    sweep_dir = spec.sweep_dir()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    _check_finished_match(grid)
    write_atomic(sweep_dir / "sweep.yaml", yaml.safe_dump(_spec_record(spec), sort_keys=False))
    manifest = Manifest(sweep_dir, spec.name, command, grid)
    todo = [c for c in grid if manifest.state(c.name) != "done"]
    print(
        f"sweep {spec.name}: {len(grid)} cells in {sweep_dir}; {len(grid) - len(todo)} finished (skipped), {len(todo)} to run"
    )
    tracker = _Tracker(manifest, len(todo))
    t0 = time.time()
    if todo:
        executor.run(todo, tracker)
    notes = Counter(manifest.data["cells"][c.name].get("reference") for c in todo if manifest.state(c.name) == "done")
    if any(notes):
        print("reference pass: " + ", ".join(f"{k} in {v} cell(s)" for k, v in notes.items() if k))
    failures = {
        c.name: manifest.data["cells"][c.name].get("error", "") for c in grid if manifest.state(c.name) == "failed"
    }
    print(
        f"sweep {spec.name}: {sum(manifest.state(c.name) == 'done' for c in grid)}/{len(grid)} cells done, "
        f"{len(failures)} failed, {time.time() - t0:.0f} s; manifest {manifest.path}"
    )
    return failures


class _Tracker:
    def __init__(self, manifest: Manifest, total: int):
        self.manifest, self.total, self.count, self.t0 = manifest, total, 0, {}

    def started(self, cell: Cell) -> None:
        self.t0[cell.name] = time.time()
        self.manifest.update(cell.name, state="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"))
        print(f"  start {cell.name}", flush=True)

    def finished(self, cell: Cell, error: str | None) -> None:
        self.count += 1
        wall = round(time.time() - self.t0.get(cell.name, time.time()), 1)
        reference = reference_note(cell.dir)
        if error is None:
            self.manifest.update(cell.name, state="done", wall_s=wall, reference=reference)
            extra = f"; reference pass {reference}" if reference else ""
            print(f"  [{self.count}/{self.total}] {cell.name}: done in {wall:.0f} s{extra}", flush=True)
        else:
            self.manifest.update(cell.name, state="failed", error=error, wall_s=wall)
            print(
                f"  [{self.count}/{self.total}] {cell.name}: FAILED: {error} (log: {cell.dir / 'log.txt'})", flush=True
            )


def _check_finished_match(grid: list[Cell]) -> None:
    for cell in grid:
        if not (cell.dir / "summary.json").is_file():
            continue
        saved, planned = _comparable(to_dict(load_config(cell.dir))), _comparable(to_dict(cell.config))
        if saved != planned:
            diff = [
                f"{k}: {saved.get(k)!r} -> {planned.get(k)!r}"
                for k in sorted(set(saved) | set(planned))
                if saved.get(k) != planned.get(k)
            ]
            raise SweepFileError(
                f"finished cell {cell.dir} was trained with other settings ({'; '.join(diff[:5])}); "
                "choose another sweep directory (output_dir / --output_dir) or delete that cell to re-train it"
            )


def _comparable(values: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in values.items():
        if isinstance(v, dict):
            flat.update(_comparable(v, f"{prefix}{k}."))
        elif f"{prefix}{k}" not in ("output_dir", "config"):
            flat[f"{prefix}{k}"] = v
    return flat


def _spec_record(spec: SweepSpec) -> dict:
    record = {"name": spec.name, "methods": spec.methods, "seeds": spec.seeds}
    if spec.datasets:
        record["datasets"] = spec.datasets
    record.update(spec.overrides)
    record.update({"base": spec.base, "executor": spec.executor, "output_dir": str(spec.sweep_dir())})
    return record
