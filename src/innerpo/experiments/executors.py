"""Executors: run a list of cells and report each one's start and end to a tracker.

- `LocalExecutor`: one cell after another in this process (the default).
- `WorkerExecutor`: N worker processes at once, each with `threads` torch/OpenMP threads,
  so N workers do not oversubscribe the cores. A cell waits while another seed of the
  same settings runs for the first time, so the caches that seed writes are reused
  rather than computed twice at once.
- `SubmititExecutor`: a submitit job array: SLURM on a cluster (`cluster=None` picks it
  when `sbatch` is present), or submitit's `local` / `debug` executors here. The SLURM
  path is the same code with different parameters.

Each one calls `innerpo.experiments.runner.run_cell` on every cell (after
`prepare_cell`), and never stops at a failing cell: the tracker gets its error.
A tracker has `started(cell)` and `finished(cell, error: str | None)`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from innerpo.config import to_dict
from innerpo.experiments.cells import Cell
from innerpo.experiments.runner import LOG, prepare_cell, read_error, run_cell

POLL_S = 0.5


class LocalExecutor:
    def run(self, cells: list[Cell], tracker) -> None:
        for cell in cells:
            prepare_cell(cell)
            tracker.started(cell)
            try:
                run_cell(cell)
            except Exception as e:  # a failing cell is recorded; the others go on
                tracker.finished(cell, read_error(cell.dir) or f"{type(e).__name__}: {e}")
            else:
                tracker.finished(cell, None)


@dataclass
class WorkerExecutor:
    workers: int
    threads: int | None = None
    """Threads per worker; default: the machine's cores divided among the workers."""

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        self.threads = self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    def run(self, cells: list[Cell], tracker) -> None:
        env = {
            **os.environ,
            **{k: str(self.threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        }
        queue, running, warmed = list(cells), {}, set()
        try:
            while queue or running:
                while queue and len(running) < self.workers:
                    cell = _next_cell(queue, warmed, {family(c) for c, _ in running.values()})
                    if cell is None:
                        break
                    prepare_cell(cell)
                    with open(cell.dir / LOG, "a") as log:  # errors before run_cell's own logging starts
                        cmd = [sys.executable, "-m", "innerpo.experiments.runner", str(cell.dir), str(self.threads)]
                        running[cell.name] = (
                            cell,
                            subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                        )
                    tracker.started(cell)
                time.sleep(POLL_S)
                for name, (cell, proc) in list(running.items()):
                    code = proc.poll()
                    if code is None:
                        continue
                    del running[name]
                    warmed.add(family(cell))
                    tracker.finished(cell, None if code == 0 else read_error(cell.dir) or _exit_text(code))
        finally:
            for cell, proc in running.values():  # interrupted: do not leave orphans
                proc.terminate()
                proc.wait()


def family(cell: Cell) -> str:
    """Cells differing only in seed share every cache (reference pass, base scores)."""
    values = to_dict(cell.config)
    values["training"].pop("seed")
    values.pop("output_dir")
    return json.dumps(values, sort_keys=True, default=str)


def _next_cell(queue: list[Cell], warmed: set[str], busy: set[str]) -> Cell | None:
    """The first queued cell that will not compute a cache another worker is computing
    now: its family has finished a cell, or no cell of its family is running."""
    for i, cell in enumerate(queue):
        key = family(cell)
        if key in warmed or key not in busy:
            return queue.pop(i)
    return None


def _exit_text(code: int) -> str:
    if code < 0:
        return f"worker killed by signal {-code} (out of memory or killed; see its log)"
    return f"worker exited with code {code} (see its log)"


SLURM_KEYS = {
    "partition": "slurm_partition",
    "time_min": "timeout_min",
    "gpus": "gpus_per_node",
    "cpus": "cpus_per_task",
    "mem_gb": "mem_gb",
    "array_parallelism": "slurm_array_parallelism",
}


@dataclass
class SubmititExecutor:
    folder: str
    """Where submitit keeps job scripts, pickles and its own logs."""
    cluster: str | None = None
    """None: SLURM when available; `local` (subprocesses) or `debug` (in this process)."""
    slurm: dict = field(default_factory=dict)
    """partition, time_min, gpus, cpus, mem_gb, array_parallelism."""
    threads: int | None = None

    def parameters(self) -> dict:
        unknown = set(self.slurm) - set(SLURM_KEYS)
        if unknown:
            raise ValueError(f"unknown slurm setting(s) {', '.join(sorted(unknown))}; known: {', '.join(SLURM_KEYS)}")
        params = {SLURM_KEYS[k]: v for k, v in self.slurm.items() if v is not None}
        if self.cluster in ("local", "debug"):  # slurm_* settings mean nothing off SLURM
            params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
        return params

    def run(self, cells: list[Cell], tracker) -> None:
        import submitit

        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        executor.update_parameters(**self.parameters())
        for cell in cells:
            prepare_cell(cell)
        threads = self.threads or self.slurm.get("cpus")
        jobs = executor.map_array(run_cell, cells, [threads] * len(cells))  # one job array
        pending = dict(zip(jobs, cells))
        for cell in cells:
            tracker.started(cell)
        while pending:
            for job, cell in list(pending.items()):
                if not job.done():
                    continue
                del pending[job]
                try:
                    job.result()
                except Exception as e:
                    last = str(e).strip().splitlines()[-1:] or [type(e).__name__]
                    tracker.finished(cell, read_error(cell.dir) or f"{last[0]} (submitit job {job.job_id})")
                else:
                    tracker.finished(cell, None)
            if pending:
                time.sleep(POLL_S)
