"""Arguments of `innerpo sweep`: a sweep file and/or the same axes as flags.

    innerpo sweep configs/sweeps/synthetic-seeds.yaml --workers 2
    innerpo sweep --methods dpo ipo --seeds 1 2 --grid training.lr=1e-4,5e-5 \\
        --model.base_model=tiny-random --training.max_steps=20 --output_dir outputs/sweeps/quick

Any other `--section.key=value` flag is a shared setting (added to the file's `base:`).

Every cell is checked before any trains (innerpo.experiments.check): `--check` prints
one line per cell and stops there; a plain sweep with a cell `innerpo train` would
refuse stops before writing anything, unless `--skip_refused` runs the others. The
driving command holds `SWEEP/sweep.lock`, so a second sweep on one directory is refused.

Exit code 0: every cell finished (or, with --check, none is refused); 1: some cells failed
or were skipped as refused (listed); 2: bad sweep file or flags, a refused cell, or the
directory in use by another sweep.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import yaml

from innerpo.experiments.check import LOCK, check_cells, summary_line, sweep_busy
from innerpo.experiments.executors import LocalExecutor, SubmititExecutor, WorkerExecutor
from innerpo.experiments.sweep import run_sweep
from innerpo.experiments.sweep_file import SweepFileError, cells, deep_update, load_sweep, parse_sweep, setting_flags
from innerpo.io import locked

EXECUTORS = ("local", "slurm", "submitit-local", "submitit-debug")


SLURM_FLAGS = {
    "partition": "SLURM partition",
    "time_min": "job time limit, minutes",
    "gpus": "GPUs per job",
    "cpus": "CPUs per job",
    "mem_gb": "memory per job, GB",
}


def add_slurm_flags(p: argparse.ArgumentParser, array: bool) -> None:
    """The SLURM job flags (`--partition`, `--time_min`, ...), read into `slurm_<key>`; with
    `array`, also the job array's parallelism."""
    flags = {**SLURM_FLAGS, **({"array_parallelism": "jobs of the array at once"} if array else {})}
    for key, help_text in flags.items():
        p.add_argument(f"--{key}", dest=f"slurm_{key}", type=str if key == "partition" else int, help=help_text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="innerpo sweep",
        allow_abbrev=False,
        description="Train a grid of runs (methods × seeds × data × overrides), skipping finished cells.",
        epilog="Any other --section.key=value flag (e.g. --training.max_steps=20, --data.genies_dir=DIR) is "
        "a setting shared by every cell.",
    )
    p.add_argument("sweep_file", nargs="?", help="YAML sweep file (see configs/sweeps/); flags below override its axes")
    p.add_argument("--methods", nargs="+", help="method presets (innerpo train --help lists them)")
    p.add_argument("--seeds", nargs="+", type=int)
    p.add_argument("--datasets", nargs="+", help="training data axis (each with the cells' eval suite)")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="an override axis, e.g. training.lr=1e-4,5e-5 (repeatable)",
    )
    p.add_argument(
        "--output_dir", help="sweep directory (default: the file's `output_dir`, else outputs/sweeps/<name>)"
    )
    p.add_argument("--name", help="sweep name (default: the file's stem)")
    p.add_argument(
        "--check",
        action="store_true",
        help="resolve and validate every cell (config, method, data, eval suite, run directory) without training "
        "or writing anything: one line per cell; exit 2 if any is refused",
    )
    p.add_argument(
        "--skip_refused",
        action="store_true",
        help="run the cells that pass the check and record the refused ones (default: refuse to start)",
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="local (default): in this machine's processes; slurm: a submitit job array; "
        "submitit-local/-debug: submitit's local executors",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="local: run N cells at once, each in its own process; 0: one after another in this process "
        "(default unless the file sets executor.workers)",
    )
    p.add_argument("--threads", type=int, help="torch threads per worker or job (default: cores / workers)")
    add_slurm_flags(p, array=True)
    return p


def build(argv: list[str], args=None, rest=None):
    """(spec, executor) from the command line."""
    if args is None:
        args, rest = parser().parse_known_args(argv)
    if args.sweep_file:
        spec = load_sweep(args.sweep_file)
        values = {
            "name": spec.name,
            "command": spec.command,
            "methods": spec.methods,
            "seeds": spec.seeds,
            **spec.overrides,
            "base": spec.base,
            "executor": spec.executor,
            "output_dir": spec.output_dir,
        }
        if spec.datasets:
            values["datasets"] = spec.datasets
        root, where = spec.root, args.sweep_file
    else:
        values, root, where = {"name": "sweep"}, Path("."), "command line"
    for key in ("methods", "seeds", "datasets", "name", "output_dir"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    for axis in args.grid:
        key, _, text = axis.partition("=")
        if not text or "." not in key:
            raise SweepFileError(f"--grid {axis!r}: expected KEY=V1,V2 with a dotted config key")
        values[key] = yaml.safe_load(f"[{text}]")
    values["base"] = dict(values.get("base") or {})
    deep_update(values["base"], setting_flags(rest))
    spec = parse_sweep(values, where, name=values["name"], root=root)
    return spec, _executor(args, spec)


def _executor(args, spec):
    settings = dict(spec.executor)
    slurm = dict(settings.get("slurm") or {})
    slurm.update(
        {k.removeprefix("slurm_"): v for k, v in vars(args).items() if k.startswith("slurm_") and v is not None}
    )
    kind = args.executor or settings.get("name", "local")
    workers = args.workers if args.workers is not None else settings.get("workers", 0)
    threads = args.threads or settings.get("threads")
    if kind not in EXECUTORS:
        raise SweepFileError(f"executor {kind!r}: choose one of {', '.join(EXECUTORS)}")
    if kind == "local":
        return WorkerExecutor(workers, threads) if workers else LocalExecutor()
    cluster = {"slurm": "slurm", "submitit-local": "local", "submitit-debug": "debug"}[kind]
    executor = SubmititExecutor(str(spec.sweep_dir() / ".submitit"), cluster, slurm, threads)
    executor.parameters()  # unknown settings fail here, before anything runs
    return executor


def main(argv: list[str]) -> None:
    args, rest = parser().parse_known_args(argv)
    try:
        spec, executor = build(argv, args, rest)
        sweep_dir = spec.sweep_dir()
        if sweep_busy(sweep_dir):
            raise SweepFileError(f"another `innerpo sweep` is running on {sweep_dir} (it holds {LOCK}); wait for it")
        checks = _check(spec, verbose=args.check)
        refused = {c.cell.name: c.detail for c in checks if c.state == "refused"}
        if args.check or (refused and not args.skip_refused):
            _refusals(refused, checked=args.check)
            return
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with locked(sweep_dir / LOCK, wait=False, holder="innerpo sweep"):
            failures = run_sweep(spec, executor, command="innerpo sweep " + shlex.join(argv), refused=refused)
    except (SweepFileError, FileNotFoundError, ValueError) as e:
        print(f"innerpo sweep: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(
            "\ninnerpo sweep: interrupted; finished cells are kept, re-run the same command to go on.", file=sys.stderr
        )
        sys.exit(130)
    if failures or refused:
        if failures:
            print(f"\n{len(failures)} cell(s) failed:", file=sys.stderr)
            for name, error in failures.items():
                print(f"  {name}: {error}", file=sys.stderr)
            print("Re-run the same command to retry them; finished cells are skipped.", file=sys.stderr)
        if refused:
            print(f"\n{len(refused)} cell(s) refused and skipped (--skip_refused):", file=sys.stderr)
            for why, names in _by_reason(refused).items():
                print(f"  {', '.join(names)}:\n    {why}", file=sys.stderr)
        sys.exit(1)


def _check(spec, verbose: bool) -> list:
    """Check every cell; with `verbose` (--check) print each cell's line as it is decided
    (a reason already printed is named by the first cell it refused)."""
    grid = cells(spec)
    print(f"sweep {spec.name}: checking {len(grid)} cells in {spec.sweep_dir()}", flush=True)
    first: dict[str, str] = {}

    def show(check):
        if check.state == "refused" and check.detail in first:
            print(f"  {check.cell.name}: REFUSED: as {first[check.detail]}", flush=True)
            return
        first.setdefault(check.detail, check.cell.name)
        print(f"  {check.line}", flush=True)

    checks = check_cells(grid, progress=show if verbose else None)
    print(f"sweep {spec.name}: {summary_line(checks)}", flush=True)
    return checks


def _refusals(refused: dict[str, str], checked: bool) -> None:
    """After --check, or a sweep that will not start: exit 2 naming every refused cell,
    grouped by reason (return if none)."""
    if not refused:
        return
    what = "" if checked else "; nothing was run or written (--skip_refused runs the others)"
    print(f"\ninnerpo sweep: {len(refused)} cell(s) refused{what}:", file=sys.stderr)
    for why, names in _by_reason(refused).items():
        print(f"  {', '.join(names)}:\n    {why}", file=sys.stderr)
    sys.exit(2)


def _by_reason(refused: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, why in refused.items():
        grouped.setdefault(why, []).append(name)
    return grouped
