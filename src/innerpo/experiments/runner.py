"""Running one cell: the only place that decides how a cell's directory is (re)started.

A cell is finished when its run directory holds `summary.json` (written last by the
training loop's final evaluation). Anything else in the directory is a half-finished
attempt and is removed before the cell runs again from scratch. Resuming from a
checkpoint (issue 11) belongs in `prepare_cell`: keep the checkpoint instead of removing
it and let `run_cell` pass it to the loop.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sys
import time
import traceback
from pathlib import Path

from innerpo.experiments.cells import Cell
from innerpo.train.run_dir import save_config

LOG = "log.txt"
ERROR = "error.json"


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / "summary.json").is_file()


def prepare_cell(cell: Cell) -> None:
    """Start the cell afresh: an empty directory holding only its planned config.yaml
    (what a worker process loads) and an empty log."""
    if cell.dir.exists():
        shutil.rmtree(cell.dir)
    cell.dir.mkdir(parents=True)
    save_config(cell.dir, cell.config)
    (cell.dir / LOG).write_text("")


def run_cell(cell: Cell, threads: int | None = None, on_eval=None) -> str:
    """Train the cell in this process (with `threads` torch threads when given), its
    output going to `<cell>/log.txt`; `on_eval` is passed to the loop (a tuner's pruning hook).

    On failure the error's type and message go to `<cell>/error.json` and the traceback
    to the log, then the exception propagates. Returns the cell's name. This is the
    callable every executor runs (in-process, in a worker process, or pickled by submitit).
    """
    import torch

    from innerpo.train.loop import train

    if threads:
        torch.set_num_threads(threads)
    t0 = time.time()
    with open(cell.dir / LOG, "a", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            train(cell.config, on_eval=on_eval)
        except BaseException as e:
            traceback.print_exc(file=log)
            record_error(cell.dir, f"{type(e).__name__}: {e}")
            raise
        print(f"cell {cell.name} finished in {time.time() - t0:.0f} s")
    return cell.name


def record_error(run_dir: Path, message: str) -> None:
    (Path(run_dir) / ERROR).write_text(json.dumps({"error": message}))


def read_error(run_dir: Path) -> str | None:
    path = Path(run_dir) / ERROR
    if path.is_file():
        return json.loads(path.read_text())["error"]
    return None


def reference_note(run_dir: Path) -> str | None:
    """`reused from cache` / `computed and cached` as the loop printed it, None if it did not run one."""
    path = Path(run_dir) / LOG
    if not path.is_file():
        return None
    found = re.search(r"reference pass: (reused from cache|computed and cached)", path.read_text(errors="replace"))
    return found.group(1) if found else None


def main_worker(argv: list[str] | None = None) -> None:
    """`python -m innerpo.experiments.runner CELL_DIR THREADS`: one cell in its own process
    (the `--workers N` executor), with THREADS torch threads."""
    from innerpo.train.run_dir import load_config

    args = sys.argv[1:] if argv is None else argv
    run_dir, threads = Path(args[0]), int(args[1])
    cell = Cell(run_dir.name, run_dir, load_config(run_dir))
    try:
        run_cell(cell, threads)
    except BaseException:
        sys.exit(1)


if __name__ == "__main__":
    main_worker()
