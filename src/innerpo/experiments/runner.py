"""Running one cell: the only place that decides how a cell's directory is (re)started.

A cell is finished when its run directory holds `summary.json` (written last by the
training loop's final evaluation). Anything else in the directory is a half-finished
attempt. When that attempt left a complete checkpoint (`--training.save_every=N`, or the
one the loop writes on SIGTERM/SIGINT) and was started with the cell's own settings
(nothing that changes the result differs, as `innerpo train --resume` checks), the cell
continues from it: a killed sweep re-run loses at most the steps since the last
checkpoint. Otherwise the directory is removed and the cell runs again from scratch.
A STaR cell (innerpo.experiments.star_cell) is finished when its run has every
iteration, and has no checkpoints: it always starts afresh.
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

from innerpo.experiments import star_cell
from innerpo.experiments.cells import Cell
from innerpo.star.report import is_complete
from innerpo.train.checkpoint import checkpoint_dirs, clean_partial, latest_checkpoint, resume_conflicts
from innerpo.train.run_dir import load_config, save_config

LOG = "log.txt"
ERROR = "error.json"


def is_finished(run_dir: Path) -> bool:
    run_dir = Path(run_dir)
    if (run_dir / star_cell.RUN_CONFIG).is_file():  # a STaR run writes summary.json after every iteration
        return is_complete(run_dir)
    return (run_dir / "summary.json").is_file()


def resumable(cell: Cell) -> Path | None:
    """The checkpoint a half-finished attempt of this cell can continue from, else None:
    the attempt has no final adapter, a complete checkpoint, and a saved config whose
    settings that change the result are the cell's."""
    if (cell.dir / "adapter").exists() or not (cell.dir / "config.yaml").is_file():
        return None
    checkpoint = latest_checkpoint(cell.dir)
    if checkpoint is None:
        return None
    try:
        saved = load_config(cell.dir)
    except Exception:  # an unreadable config.yaml: the attempt cannot be trusted, start afresh
        return None
    return None if resume_conflicts(saved, cell.config) else checkpoint


def prepare_cell(cell: Cell) -> None:
    """Make the cell's directory ready for `run_cell`: a half-finished attempt that can
    resume keeps its checkpoints and log (a line in the log says so); anything else
    starts afresh as an empty directory. Either way the directory then holds the cell's
    planned config.yaml (what a worker process loads)."""
    checkpoint = resumable(cell)
    if checkpoint is not None:
        clean_partial(cell.dir)
        (cell.dir / ERROR).unlink(missing_ok=True)
        with open(cell.dir / LOG, "a") as log:
            log.write(f"\n--- continuing from {checkpoint.name} of an earlier attempt\n")
    else:
        if cell.dir.exists():
            shutil.rmtree(cell.dir)
        cell.dir.mkdir(parents=True)
        (cell.dir / LOG).write_text("")
    if star_cell.is_star(cell.config):
        star_cell.save_plan(cell.dir, cell.config)
    else:
        save_config(cell.dir, cell.config)


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
    with (
        open(cell.dir / LOG, "a", buffering=1) as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        try:
            if star_cell.is_star(cell.config):
                star_cell.run(cell.config)
            else:  # prepare_cell kept checkpoints only for an attempt that can resume, else emptied the directory
                train(cell.config, on_eval=on_eval, resume=bool(checkpoint_dirs(cell.dir)))
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
    cell = Cell(run_dir.name, run_dir, star_cell.load_plan(run_dir) or load_config(run_dir))
    try:
        run_cell(cell, threads)
    except BaseException:
        sys.exit(1)


if __name__ == "__main__":
    main_worker()
