"""`innerpo` command line: train, eval, data, star (sweep, report and tune parse their own flags).

Each level explains itself with --help. Flags are hierarchical and written as the
config nests: `innerpo train dpo --model.lora_r=32 --data.batch_size=8 --training.lr=5e-5`.
Precedence: preset defaults < `--config FILE.yaml` < command-line flags.

One convention for every command (train, eval, sweep, report, tune, star, data):
- words in a flag are joined by underscores (`--training.max_steps`, `--startup_trials`,
  `--time_min`), as are the keys of the files they mirror (sweep files, configs);
- the directory a command writes is `--output_dir` (train, star, sweep, tune, report);
- a setting has one name everywhere: `--data.genies_dir` in train, eval, star, data, sweep;
- a flag takes `--flag=V` or `--flag V`.
Old spellings (`--out`, `--startup-trials`, `innerpo eval --genies_dir`, ...) work for one
release with a line on stderr; innerpo.flags holds their table and translates them here.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from dataclasses import dataclass, field
from typing import Annotated

import tyro

from innerpo.config import apply_yaml
from innerpo.errors import InputError
from innerpo.eval.config import EvalConfig
from innerpo.flags import translate

USAGE = """usage: innerpo {train,eval,data,sweep,report,tune,star} ...

Preference optimization of language models with LoRA, and evaluation of how the learned
preference generalizes across distribution shifts.

commands:
  train NAME [flags]     train an adapter with method NAME (innerpo train --help lists them)
  train --resume RUN     continue a run from its newest checkpoint
  train NAME --num_processes N [flags]   data-parallel training in N processes (accelerate)
  eval RUN_DIR [flags]   evaluate a trained run on an eval suite (base and adapter)
  data {list,show}       list data sources and eval suites, or show pairs from one
  sweep [SWEEP.yaml]     train a grid of methods x seeds x data, skipping finished cells
  report DIR [DIR ...]   tables with confidence intervals, paired differences and plots
  tune NAME [flags]      hyperparameter search for method NAME with Optuna (resumable)
  star [flags]           STaR self-training: rationales, filtering, SFT or DPO per iteration
"""


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    try:
        rest = translate(command, rest)
        if command in COMMANDS:
            COMMANDS[command](rest)
        elif command in ROOMS:  # commands whose own module parses their arguments
            importlib.import_module(ROOMS[command]).main(rest)
        else:
            print(USAGE, file=sys.stderr)
            sys.exit(f"innerpo: unknown command {command!r}")
    except InputError as e:  # a bad config, option, suite or data file: one line, exit 2 (like a bad flag)
        print(f"innerpo {command}: error: {e}", file=sys.stderr)
        sys.exit(2)


def _flag_value(args: list[str], flag: str) -> str | None:
    """Value of `--flag=V` or `--flag V` in args, found before tyro parses them."""
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def _drop_flag(args: list[str], flag: str) -> list[str]:
    """args without `--flag=V` / `--flag V` (flags handled before tyro parses the rest)."""
    return [a for i, a in enumerate(args) if not (a == flag or a.startswith(flag + "=") or (i and args[i - 1] == flag))]


def _train(args: list[str]) -> None:
    from innerpo.methods.presets import PRESETS, aliases, resolve_method_name
    from innerpo.train.config import preset_config

    if args and not args[0].startswith("-"):
        args = [resolve_method_name(args[0]), *args[1:]]  # research-code names and any case

    processes = _flag_value(args, "--num_processes")  # data parallel: relaunch through accelerate
    args = _drop_flag(args, "--num_processes")
    if processes is not None and not processes.isdigit():
        print(f"innerpo train: --num_processes must be a whole number, got {processes!r}", file=sys.stderr)
        sys.exit(2)
    from innerpo.train.distributed import in_launched_process, launch_command

    if processes is not None and int(processes) > 1 and not in_launched_process():
        import subprocess

        sys.exit(subprocess.call(launch_command(int(processes), args)))
    resume = _flag_value(args, "--resume")  # RUN_DIR or auto: continue a run from its newest checkpoint
    args = _drop_flag(args, "--resume")
    saved = _resumed_config(resume) if resume not in (None, "auto") else None
    if saved is not None and (not args or args[0] not in PRESETS):
        args = [saved.method_name, *args]  # `innerpo train --resume RUN` needs no method name
    config_file = _flag_value(args, "--config")
    defaults = {}
    for name in PRESETS:
        cfg = saved if saved is not None and name == saved.method_name else preset_config(name)
        defaults[name] = apply_yaml(cfg, config_file) if config_file else cfg
        defaults[name] = dataclasses.replace(
            defaults[name], method_name=name, config=config_file or defaults[name].config
        )
    descriptions = {
        name: p.description + (f" (also: {', '.join(aliases(name))})" if aliases(name) else "")
        for name, p in PRESETS.items()
    }
    cls = tyro.extras.subcommand_type_from_defaults(defaults, descriptions)
    cfg = tyro.cli(
        cls,
        args=args,
        prog="innerpo train",
        description="Train a LoRA adapter with a preference objective, then evaluate it.",
        use_underscores=True,
    )

    from innerpo.train.checkpoint import resolve_resume
    from innerpo.train.loop import train
    from innerpo.train.signals import Interrupted

    try:
        cfg, resuming = resolve_resume(cfg, resume)  # ResumeError is an InputError: exit 2 in main()
        train(cfg, resume=resuming)
    except Interrupted as e:
        print(f"innerpo train: {e}", file=sys.stderr)
        sys.exit(128 + e.signum)


def _resumed_config(run_dir: str):
    """The saved config of the run `--resume` names (exit 2 when there is none)."""
    from innerpo.train.run_dir import load_config

    try:
        return load_config(run_dir)
    except FileNotFoundError as e:
        print(f"innerpo train --resume: {e}", file=sys.stderr)
        sys.exit(2)


@dataclass
class GeniesData:
    genies_dir: str | None = None
    """Local GENIES directory for genies-* sources and suites (innerpo eval's default: the run's own)."""


@dataclass
class EvalArgs:
    """Evaluate a trained run (its base model with and without the adapter) on an eval suite."""

    run_dir: tyro.conf.Positional[str]
    """Run directory written by `innerpo train`."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    data: GeniesData = field(default_factory=GeniesData)
    checkpoint: str | None = None
    """Evaluate a checkpoint instead of the final adapter: `step-50` (results in RUN/checkpoints/step-50/eval-<suite>/), or `all` (a table of accuracy per shift against step, RUN/checkpoints/accuracy.md)."""  # noqa: E501


def _eval(args: list[str]) -> None:
    from innerpo.train.run_dir import load_config

    run_dir = next((a for a in args if not a.startswith("-")), None)
    defaults = EvalArgs(run_dir=run_dir or "")
    if run_dir is not None:
        try:
            run_cfg = load_config(run_dir)
        except FileNotFoundError as e:
            raise InputError(str(e)) from None
        defaults = EvalArgs(run_dir=run_dir, eval=run_cfg.eval, data=GeniesData(run_cfg.data.genies_dir))
    parsed = tyro.cli(EvalArgs, args=args, default=defaults, prog="innerpo eval", use_underscores=True)

    from innerpo.train.evaluate import evaluate_run

    if parsed.checkpoint == "all":
        from innerpo.train.evaluate_checkpoints import evaluate_checkpoints

        evaluate_checkpoints(parsed.run_dir, parsed.eval, parsed.data.genies_dir)
    else:
        evaluate_run(parsed.run_dir, parsed.eval, parsed.data.genies_dir, parsed.checkpoint)


@dataclass
class DataList:
    """List the data sources and eval suites that need no file of yours."""


@dataclass
class DataShow:
    """Show pairs from a data source or eval suite."""

    name: tyro.conf.Positional[str]
    """A source (`synthetic:in_domain`, `genies:alpaca_easy`, a file) or an eval suite name."""
    split: str = "test"
    n: int = 3
    """How many pairs to print."""
    data: GeniesData = field(default_factory=GeniesData)


def _data(args: list[str]) -> None:
    from innerpo.eval.catalog import list_sources, show

    cmd = tyro.cli(
        Annotated[DataList, tyro.conf.subcommand("list")] | Annotated[DataShow, tyro.conf.subcommand("show")],
        args=args,
        prog="innerpo data",
        use_underscores=True,
    )
    if isinstance(cmd, DataList):
        print(list_sources())
    else:
        print(show(cmd.name, cmd.split, cmd.n, cmd.data.genies_dir))


def _star(args: list[str]) -> None:
    from innerpo.star.config import StarRunConfig, with_method

    default = StarRunConfig()
    method = _flag_value(args, "--star.method")
    if method not in (None, "None"):  # the preset's settings become the --method.* defaults
        default, args = with_method(default, method), _drop_flag(args, "--star.method")
    cfg = tyro.cli(
        StarRunConfig,
        args=args,
        default=default,
        prog="innerpo star",
        use_underscores=True,
        description="STaR self-training (arXiv:2203.14465): sample rationales, keep the correct ones (or "
        "pair them with wrong ones), train, repeat; held-out accuracy per iteration.",
    )
    from innerpo.star.loop import run_star

    run_star(cfg)  # bad input raises an InputError: main prints it and exits 2


COMMANDS = {"train": _train, "eval": _eval, "data": _data, "star": _star}
ROOMS = {"sweep": "innerpo.experiments.command", "report": "innerpo.report.command", "tune": "innerpo.tune.command"}

if __name__ == "__main__":
    main()
