"""Who runs the trials: one loop per worker, all sharing the study in the tune directory.

A worker asks the study for a trial, trains it, tells the result, and repeats until the
study holds `trials` trials (interrupted ones not counted) or the deadline passed; a
trial under way when the deadline passes finishes. Asking is serialised by a lock file
so N workers never overshoot the budget. Workers run in this process (`--workers 1`),
as N local processes with cores/N torch threads each, or as a submitit job array
(SLURM; the sweep's settings and their mapping, innerpo.experiments.executors).

The command that drives them holds `TUNE/driver.lock` while it runs, so when it starts,
trials still marked running were left by a killed run: they are recorded as
interrupted and their parameters queued again. Two drivers on one directory are refused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from optuna.trial import TrialState

from innerpo.io import Busy, locked
from innerpo.tune.study import TuneError, load_spec, open_study
from innerpo.tune.trial import mark_interrupted, run_trial

POLL_S = 0.5


def counted(study) -> int:
    """Trials that use the budget: all but the interrupted and the queued."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state != TrialState.WAITING and not t.user_attrs.get("interrupted")
    )


def run_worker(tune_dir: str, index: int, trials: int, deadline: float | None, threads: int | None = None) -> int:
    """One worker's loop; returns how many trials it ran. The callable every executor runs."""
    tune_dir = Path(tune_dir)
    spec = load_spec(tune_dir)
    study = open_study(tune_dir, spec, worker=index)
    ran = 0
    while True:
        with locked(tune_dir / "ask.lock", holder="innerpo tune worker"):
            if counted(study) >= trials or (deadline is not None and time.time() >= deadline):
                return ran
            trial = study.ask()
        print(f"worker {index}: trial {trial.number} started", flush=True)
        run_trial(study, trial, spec, tune_dir, threads)
        ran += 1
        frozen = study.get_trials(deepcopy=False)[trial.number]
        print(f"worker {index}: trial {trial.number} {frozen.state.name.lower()} value={frozen.value}", flush=True)


def recover_interrupted(tune_dir: Path) -> int:
    """Mark trials left running by a killed run as interrupted (their parameters queued again)."""
    study = open_study(tune_dir, load_spec(tune_dir))
    stale = [t.number for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for number in stale:
        mark_interrupted(study, tune_dir, number, "interrupted: its process ended before the trial did")
    return len(stale)


@contextlib.contextmanager
def driving(tune_dir: Path):
    """Hold the driver lock; turn SIGTERM into SystemExit so worker processes are stopped."""
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        with locked(Path(tune_dir) / "driver.lock", wait=False, holder="innerpo tune"):
            yield
    except Busy as e:
        raise TuneError(str(e)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def run_local(tune_dir: Path, workers: int, trials: int, deadline: float | None, threads: int | None) -> list[int]:
    """Run the workers here; returns the indexes of worker processes that exited with an error."""
    if workers == 1:
        run_worker(str(tune_dir), 0, trials, deadline, threads)
        return []
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    env = {**os.environ, **{k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    logs = Path(tune_dir) / "workers"
    logs.mkdir(exist_ok=True)
    procs = []
    try:
        for i in range(workers):
            cmd = [
                sys.executable,
                "-m",
                "innerpo.tune.workers",
                str(tune_dir),
                str(i),
                str(trials),
                str(deadline or ""),
                str(threads),
            ]
            with open(logs / f"worker-{i}.log", "a") as log:
                procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
        while any(p.poll() is None for p in procs):
            time.sleep(POLL_S)
    finally:  # interrupted: stop the workers (each records its trial as interrupted)
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()
    return [i for i, p in enumerate(procs) if p.returncode != 0]


def run_submitit(
    tune_dir: Path,
    workers: int,
    trials: int,
    deadline: float | None,
    cluster: str | None,
    slurm: dict,
    threads: int | None,
) -> None:
    """`workers` jobs of one submitit array, each a worker loop on the shared journal."""
    import submitit

    from innerpo.experiments.executors import SubmititExecutor

    settings = SubmititExecutor(str(tune_dir / ".submitit"), cluster, slurm, threads)
    executor = submitit.AutoExecutor(folder=settings.folder, cluster=cluster)
    executor.update_parameters(**settings.parameters())
    threads = threads or slurm.get("cpus")
    jobs = executor.map_array(
        run_worker,
        [str(tune_dir)] * workers,
        range(workers),
        [trials] * workers,
        [deadline] * workers,
        [threads] * workers,
    )
    print(f"submitted {len(jobs)} worker job(s): {', '.join(j.job_id for j in jobs)}", flush=True)
    for job in jobs:
        try:
            job.result()
        except Exception as e:
            print(f"worker job {job.job_id} failed: {str(e).strip().splitlines()[-1:]}", file=sys.stderr)


def main_worker(argv: list[str] | None = None) -> None:
    """`python -m innerpo.tune.workers TUNE_DIR INDEX TRIALS DEADLINE THREADS` (one local worker)."""
    import torch

    args = sys.argv[1:] if argv is None else argv
    tune_dir, index, trials, deadline, threads = (
        Path(args[0]),
        int(args[1]),
        int(args[2]),
        float(args[3]) if args[3] else None,
        int(args[4]),
    )
    torch.set_num_threads(threads)
    try:
        run_worker(str(tune_dir), index, trials, deadline, threads)
    except BaseException:
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main_worker()
