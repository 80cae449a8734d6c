"""Arguments of `innerpo tune`: one method, its search space, a budget, workers.

    innerpo tune dpo --trials 20 --workers 2 --training.max_steps=30
    innerpo tune hs-none-innerpo --space configs/tune/innerpo.yaml --timeout 3600
    innerpo tune dpo --executor slurm --workers 8 --partition gpu --time_min 120

Any other `--section.key=value` flag is a setting shared by every trial. Re-running the
same command on the same `--output_dir` continues the study (finished trials kept, trials a
kill interrupted are tried again); `--trials` is the study's total. Exit code 0: the
study ran (or had nothing left to run); 1: a local worker process exited with an error (the
study's results are still written); 2: bad arguments, space or tune directory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from innerpo.config import apply_values
from innerpo.eval.suites import get_suite
from innerpo.experiments.command import EXECUTORS, add_slurm_flags
from innerpo.experiments.sweep_file import SweepFileError, setting_flags
from innerpo.io import write_atomic
from innerpo.methods.presets import PRESETS
from innerpo.train.config import preset_config
from innerpo.train.signals import Interrupted
from innerpo.tune.objective import OBJECTIVES, ObjectiveError, check_objective, validation_suite
from innerpo.tune.space import SpaceError, check_space, default_space, load_space, space_record
from innerpo.tune.study import PRUNERS, SAMPLERS, TuneError, TuneSpec, grid_size, load_spec, save_spec

VALIDATION_SUITE = "validation-suite.yaml"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="innerpo tune",
        description="Hyperparameter search for one method with Optuna (TPE or a grid), scored on a validation split.",
        epilog="Any other --section.key=value flag (e.g. --training.max_steps=30) is a setting shared by every trial.",
    )
    p.add_argument("method", help="method preset (innerpo train --help lists them)")
    p.add_argument("--space", help="YAML search space (configs/tune/); default: the method family's built-in space")
    p.add_argument(
        "--trials",
        type=int,
        help="total trials of the study, counting earlier runs (default 20; with --sampler grid, the grid's size)",
    )
    p.add_argument("--timeout", type=float, help="seconds after which no new trial starts")
    p.add_argument(
        "--objective", default="ood_accuracy", help=f"what to maximise: {', '.join(OBJECTIVES)} (default ood_accuracy)"
    )
    p.add_argument(
        "--pruner",
        default="median",
        choices=PRUNERS,
        help="prune on the periodic evaluation: median (default), halving, none",
    )
    p.add_argument(
        "--sampler",
        default="tpe",
        choices=SAMPLERS,
        help="tpe (default), or grid: each point of a space of choices once, in a seeded order",
    )
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    p.add_argument(
        "--startup_trials",
        type=int,
        default=10,
        help="random trials before TPE models the results (default 10, Optuna's)",
    )
    p.add_argument(
        "--validation_suite", help="eval-suite YAML trials are scored on (default: the suite's validation splits)"
    )
    p.add_argument("--output_dir", help="tune directory (default outputs/tune/<method>)")
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local (default); slurm: a submitit job array of workers; submitit-local/-debug",
    )
    p.add_argument("--workers", type=int, default=1, help="trials at once (local processes or jobs)")
    p.add_argument("--threads", type=int, help="torch threads per worker (default: cores / workers)")
    add_slurm_flags(p, array=False)
    return p


def build(argv: list[str]) -> tuple[TuneSpec, Path, argparse.Namespace, dict | None]:
    """(spec, tune directory, arguments, the validation suite to write or None); writes nothing."""
    args, rest = parser().parse_known_args(argv)
    if args.method not in PRESETS:
        raise TuneError(f"unknown method {args.method!r}; `innerpo train --help` lists them")
    if (args.trials is not None and args.trials < 1) or args.workers < 1:
        raise TuneError("--trials and --workers must be at least 1")
    base = setting_flags(rest)
    cfg = apply_values(preset_config(args.method), base, "command line")
    space = load_space(args.space) if args.space else default_space(cfg)
    check_space(space, cfg, args.space or "default space")
    tune_dir = Path(args.output_dir or Path("outputs") / "tune" / args.method)
    if args.validation_suite:
        suite, suite_path = None, str(Path(args.validation_suite).resolve())
        shifts = list(get_suite(suite_path).shifts)
    else:
        suite, suite_path = validation_suite(cfg.eval.suite), str((tune_dir / VALIDATION_SUITE).resolve())
        shifts = list(suite["shifts"])
    check_objective(args.objective, shifts)
    if args.sampler == "grid":
        points = grid_size(space)
        if args.trials is not None and args.trials > points:
            raise TuneError(f"--trials {args.trials}: the grid has {points} points, each tried once")
        args.trials = args.trials or points
    args.trials = args.trials or 20
    spec = TuneSpec(
        args.method,
        space_record(space),
        base,
        args.objective,
        args.pruner,
        args.seed,
        args.startup_trials,
        cfg.eval.suite,
        suite_path,
        args.sampler,
    )
    return spec, tune_dir, args, suite


def main(argv: list[str]) -> None:
    from innerpo.tune.results import write_results
    from innerpo.tune.workers import driving, recover_interrupted, run_local, run_submitit

    try:
        spec, tune_dir, args, suite = build(argv)
        tune_dir.mkdir(parents=True, exist_ok=True)
        with driving(tune_dir):
            save_spec(tune_dir, spec)
            if suite is not None:
                write_atomic(tune_dir / VALIDATION_SUITE, yaml.safe_dump(suite, sort_keys=False))
            spec = load_spec(tune_dir)
            stale = recover_interrupted(tune_dir)
            if stale:
                print(f"{stale} trial(s) interrupted by an earlier run: their parameters are queued again")
            deadline = time.time() + args.timeout if args.timeout else None
            print(
                f"innerpo tune {spec.method}: study in {tune_dir} ({args.trials} trials, objective "
                f"{spec.objective} on {spec.validation_suite})",
                flush=True,
            )
            failed_workers = []
            if args.executor == "local":
                failed_workers = run_local(tune_dir, args.workers, args.trials, deadline, args.threads)
            else:
                cluster = {"slurm": "slurm", "submitit-local": "local", "submitit-debug": "debug"}[args.executor]
                slurm = {
                    k.removeprefix("slurm_"): v
                    for k, v in vars(args).items()
                    if k.startswith("slurm_") and v is not None
                }
                run_submitit(tune_dir, args.workers, args.trials, deadline, cluster, slurm, args.threads)
            result = write_results(tune_dir, spec)
    except (TuneError, SpaceError, ObjectiveError, SweepFileError, FileNotFoundError, ValueError) as e:
        print(f"innerpo tune: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(f"innerpo tune: {e}; re-run the same command to continue the study", file=sys.stderr)
        sys.exit(128 + e.signum)
    counts = ", ".join(f"{v} {k}" for k, v in sorted(result["counts"].items()))
    print(f"trials: {counts or 'none'}; table {tune_dir / 'trials.md'}")
    if result["best"]:
        number, value = result["best"]
        print(f"best: trial {number}, {spec.objective} = {value:.4f}; config {tune_dir / 'best.yaml'}")
    else:
        print("no complete coherent trial yet: no best.yaml")
    if failed_workers:  # the study may be short of its trials: say so and fail the command
        which = ", ".join(map(str, failed_workers))
        print(f"innerpo tune: worker(s) {which} exited with an error; see {tune_dir / 'workers'}", file=sys.stderr)
        sys.exit(1)
