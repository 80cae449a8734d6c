"""`innerpo` command line: train, eval, data.

Each level explains itself with --help. Flags are hierarchical and written as the
config nests: `innerpo train dpo --model.lora_r=32 --data.batch_size=8 --training.lr=5e-5`.
Precedence: preset defaults < `--config FILE.yaml` < command-line flags.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Annotated

import tyro

from innerpo.config import EvalConfig, apply_yaml

USAGE = """usage: innerpo {train,eval,data,star} ...

Preference optimization of language models with LoRA, and evaluation of how the learned
preference generalizes across distribution shifts.

commands:
  train NAME [flags]     train an adapter with method NAME (innerpo train --help lists them)
  eval RUN_DIR [flags]   evaluate a trained run on an eval suite (base and adapter)
  data {list,show}       list data sources and eval suites, or show pairs from one
  star [flags]           STaR self-training: rationales, filtering, SFT or DPO per iteration
"""


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    if command == "train":
        _train(rest)
    elif command == "eval":
        _eval(rest)
    elif command == "data":
        _data(rest)
    elif command == "star":
        _star(rest)
    else:
        print(USAGE, file=sys.stderr)
        sys.exit(f"innerpo: unknown command {command!r}")


def _flag_value(args: list[str], flag: str) -> str | None:
    """Value of `--flag=V` or `--flag V` in args, found before tyro parses them."""
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def _train(args: list[str]) -> None:
    from innerpo.methods.presets import PRESETS, preset_config

    config_file = _flag_value(args, "--config")
    defaults = {}
    for name in PRESETS:
        cfg = preset_config(name)
        defaults[name] = apply_yaml(cfg, config_file) if config_file else cfg
        defaults[name] = dataclasses.replace(defaults[name], method_name=name, config=config_file)
    descriptions = {name: p.description for name, p in PRESETS.items()}
    cls = tyro.extras.subcommand_type_from_defaults(defaults, descriptions)
    cfg = tyro.cli(cls, args=args, prog="innerpo train", description="Train a LoRA adapter with a preference objective, then evaluate it.", use_underscores=True)

    from innerpo.train.loop import train

    train(cfg)


@dataclass
class EvalArgs:
    """Evaluate a trained run (its base model with and without the adapter) on an eval suite."""

    run_dir: tyro.conf.Positional[str]
    """Run directory written by `innerpo train`."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    genies_dir: str | None = None
    """Local GENIES directory for genies-* suites (default: the run's --data.genies_dir)."""


def _eval(args: list[str]) -> None:
    from innerpo.train.run_dir import load_config

    run_dir = next((a for a in args if not a.startswith("-")), None)
    defaults = EvalArgs(run_dir=run_dir or "")
    if run_dir is not None:
        try:
            run_cfg = load_config(run_dir)
        except FileNotFoundError as e:
            sys.exit(f"innerpo eval: {e}")
        defaults = EvalArgs(run_dir=run_dir, eval=run_cfg.eval, genies_dir=run_cfg.data.genies_dir)
    parsed = tyro.cli(EvalArgs, args=args, default=defaults, prog="innerpo eval", use_underscores=True)

    from innerpo.eval.run import evaluate_run

    evaluate_run(parsed.run_dir, parsed.eval, parsed.genies_dir)


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
    genies_dir: str | None = None


def _data(args: list[str]) -> None:
    from innerpo.data.catalog import list_sources, show

    cmd = tyro.cli(
        Annotated[DataList, tyro.conf.subcommand("list")] | Annotated[DataShow, tyro.conf.subcommand("show")],
        args=args,
        prog="innerpo data",
        use_underscores=True,
    )
    if isinstance(cmd, DataList):
        print(list_sources())
    else:
        print(show(cmd.name, cmd.split, cmd.n, cmd.genies_dir))


def _star(args: list[str]) -> None:
    from innerpo.data.pairs import DataError
    from innerpo.star.config import StarRunConfig

    cfg = tyro.cli(
        StarRunConfig, args=args, prog="innerpo star", use_underscores=True,
        description="STaR self-training (arXiv:2203.14465): sample rationales, keep the correct ones (or pair them with wrong ones), train, repeat; held-out accuracy per iteration.",
    )
    from innerpo.star.loop import run_star

    try:
        run_star(cfg)
    except (DataError, ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"innerpo star: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
