"""`SWEEP/manifest.json`: every cell of the sweep, its grid values and its state.

States: `pending` (not run yet), `running`, `done` (summary written), `failed` (with the
error and the log's path), `refused` (`innerpo train` would refuse it; skipped by
`--skip_refused`, with the reason). The file is rewritten atomically on every change by the one
process that drives the sweep; the truth about `done` is always the cell's own
summary.json, so a manifest left at `running` by a killed sweep is simply re-derived.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from innerpo.experiments.cells import Cell
from innerpo.experiments.runner import LOG, is_finished
from innerpo.io import write_atomic

FILENAME = "manifest.json"


class Manifest:
    def __init__(self, sweep_dir: Path, name: str, command: str, cells: list[Cell]):
        self.path = Path(sweep_dir) / FILENAME
        old = json.loads(self.path.read_text())["cells"] if self.path.is_file() else {}
        self.data = {"sweep": name, "command": command, "updated": None, "cells": {}}
        for cell in cells:
            entry = {
                "dir": cell.name,
                "axes": cell.axes,
                "state": "done" if is_finished(cell.dir) else "pending",
                "log": f"{cell.name}/{LOG}",
            }
            previous = old.get(cell.name, {})
            if entry["state"] == "done":
                entry.update({k: previous[k] for k in ("wall_s", "reference") if k in previous})
            elif previous.get("state") == "failed":
                entry["last_error"] = previous.get("error")
            self.data["cells"][cell.name] = entry
        # Cells of an earlier version of the sweep file stay listed (their runs are kept).
        for name, entry in old.items():
            if name not in self.data["cells"]:
                self.data["cells"][name] = {
                    **entry,
                    "state": "done" if is_finished(self.path.parent / name) else entry["state"],
                    "in_sweep_file": False,
                }
        self.save()

    def state(self, name: str) -> str:
        return self.data["cells"][name]["state"]

    def update(self, name: str, **values) -> None:
        entry = self.data["cells"][name]
        entry.update(values)
        if values.get("state") not in ("failed", "refused"):
            entry.pop("error", None)
        self.save()

    def save(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.data, indent=2, default=str))
