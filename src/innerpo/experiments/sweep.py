"""`innerpo sweep`: plan the grid, skip finished cells, run the rest, record every state.

Idempotent: a cell whose run directory holds summary.json is skipped; any other cell
(never run, half-finished, failed, or new in the file) runs from scratch. A finished cell
trained with settings that differ from the sweep file's stops the sweep before anything
runs (rename `output_dir`, or delete that cell, to re-train it).

The command checks every cell first (innerpo.experiments.check) and passes the cells
`innerpo train` would refuse, when told to skip them, as `refused`.
"""

from __future__ import annotations

import time
from collections import Counter

import yaml

from innerpo.experiments.cells import Cell
from innerpo.experiments.check import finished_mismatch
from innerpo.experiments.manifest import Manifest
from innerpo.experiments.runner import is_finished, reference_note
from innerpo.experiments.sweep_file import SweepFileError, SweepSpec, cells
from innerpo.io import write_atomic


def run_sweep(spec: SweepSpec, executor, command: str = "", refused: dict[str, str] | None = None) -> dict[str, str]:
    """Run the sweep's unfinished cells on `executor`, except those in `refused` ({cell name:
    why `innerpo train` would refuse it}, from innerpo.experiments.check; recorded in the
    manifest as `refused`, not run); returns {cell name: error} of the cells that failed."""
    refused = refused or {}
    grid = cells(spec)
    sweep_dir = spec.sweep_dir()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    for cell in grid:
        diff = finished_mismatch(cell) if is_finished(cell.dir) else None
        if diff:
            raise SweepFileError(
                f"finished cell {cell.dir} was trained with other settings ({diff}); "
                "choose another sweep directory (output_dir / --output_dir) or delete that cell to re-train it"
            )
    write_atomic(sweep_dir / "sweep.yaml", yaml.safe_dump(_spec_record(spec), sort_keys=False))
    manifest = Manifest(sweep_dir, spec.name, command, grid)
    for name, why in refused.items():
        if manifest.state(name) != "done":
            manifest.update(name, state="refused", error=why)
    todo = [c for c in grid if manifest.state(c.name) not in ("done", "refused")]
    skipped = f", {len(refused)} refused (skipped)" if refused else ""
    print(
        f"sweep {spec.name}: {len(grid)} cells in {sweep_dir}; {sum(manifest.state(c.name) == 'done' for c in grid)} "
        f"finished (skipped){skipped}, {len(todo)} to run"
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


def _spec_record(spec: SweepSpec) -> dict:
    record = {"name": spec.name, "command": spec.command, "methods": spec.methods, "seeds": spec.seeds}
    if spec.datasets:
        record["datasets"] = [{k: v for k, v in d.items() if v is not None} for d in spec.datasets]
    record.update(spec.overrides)
    record.update({"base": spec.base, "executor": spec.executor, "output_dir": str(spec.sweep_dir())})
    return record
