"""Sweep files: a grid of methods × seeds × training data × config overrides.

    name: synthetic-seeds            # optional; default: the file's stem
    output_dir: outputs/sweeps/NAME  # optional sweep directory (default outputs/sweeps/<name>; `out:` before)
    methods: [dpo, hs-none-innerpo]  # presets of `innerpo train`, or entries with a config file:
    #   - {method: dpo, config: outputs/tune/dpo/best.yaml, name: dpo-tuned}   (name optional)
    seeds: [1, 2, 3, 4, 5]
    datasets:                        # optional training-data axis; a suite per dataset if given
      - synthetic
      - {dataset: genies:alpaca_easy, suite: genies-alpaca}
      - {dataset: genies:alpaca_hard, suite: genies-alpaca, methods: [dpo]}   # only these methods train on it
    training.lr: [1e-4, 5e-5]        # any dotted config key with a list of values is an axis
    base:                            # settings shared by every cell, nested as the CLI flags
      training: {max_steps: 40}
    executor: {workers: 2, threads: 1, slurm: {partition: gpu, time_min: 60, gpus: 1, cpus: 4, mem_gb: 16}}

STaR sweeps (`command: star`): each cell is an `innerpo star` run. A `methods` entry is
`sft` (STaR-SFT) or an `innerpo train` preset or alias, the `--star.method` its pairs
train with (`dpo`: STaR-DPO, `hs-none-innerpo`: InnerDPO pairs, ...); `seeds` sets
`star.seed`; `base` and the override axes take `innerpo star` settings (`star.*`,
`model.*`, `training.*`, `method.*`); there is no `datasets` axis (use `star.dataset`).

Precedence in each cell: the method preset < the entry's config file < `base` < the dataset axis < override axes <
the seed. A relative `eval.suite` path (or a dataset's `suite`) is read relative to the
sweep file, and so is an entry's `config` (e.g. the best configuration `innerpo tune`
wrote). Nothing in the file is evaluated as code.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from innerpo.config import apply_values, apply_yaml
from innerpo.experiments.cells import Cell, cell_name
from innerpo.flags import translate_keys
from innerpo.methods.presets import PRESETS, resolve_method_name
from innerpo.star.config import StarRunConfig, with_method
from innerpo.train.config import preset_config

KEYS = {"name", "output_dir", "command", "methods", "seeds", "datasets", "base", "executor"}
COMMANDS = ("train", "star")


class SweepFileError(ValueError):
    """A sweep file (or sweep flags) that cannot be turned into a grid."""


@dataclass
class SweepSpec:
    name: str
    methods: list[str]
    seeds: list[int]
    datasets: list[dict] | None = None
    """Each {"dataset": str, "suite": str | None, "methods": list[str] | None (the method labels that train on it; None: all)}; None: no dataset axis."""  # noqa: E501
    overrides: dict[str, list] = field(default_factory=dict)
    base: dict = field(default_factory=dict)
    executor: dict = field(default_factory=dict)
    output_dir: str | None = None
    root: Path = Path(".")
    """Directory relative suite paths are read from (the sweep file's)."""
    source: str = "sweep"
    """The file (or `command line`) named in errors."""
    command: str = "train"
    """What each cell runs: `train` (innerpo train) or `star` (innerpo star)."""

    def sweep_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else Path("outputs") / "sweeps" / self.name


def load_sweep(path: str | Path) -> SweepSpec:
    path = Path(path)
    if not path.is_file():
        raise SweepFileError(f"sweep file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SweepFileError(f"{path}: not valid YAML: {e}") from e
    return parse_sweep(values, str(path), name=path.stem, root=path.parent)


def parse_sweep(values: dict, where: str, name: str = "sweep", root: Path = Path(".")) -> SweepSpec:
    if not isinstance(values, dict):
        raise SweepFileError(f"{where}: expected a mapping at the top level")
    values = translate_keys("sweep", values, where)
    unknown = [k for k in values if k not in KEYS and "." not in str(k)]
    if unknown:
        raise SweepFileError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(KEYS))}, or "
            "a dotted config key with a list of values"
        )
    command = values.get("command", "train")
    if command not in COMMANDS:
        raise SweepFileError(f"{where}: command must be one of {', '.join(COMMANDS)}, got {command!r}")
    methods = _list(values.get("methods", ["dpo"]), where, "methods")
    for m in methods:
        if command == "train":
            _method_entry(m, where)
        else:
            _star_entry(m, where)
    seeds = _list(values.get("seeds", [42]), where, "seeds")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise SweepFileError(f"{where}: seeds must be integers, got {seeds!r}")
    datasets = None
    if "datasets" in values and command == "star":
        raise SweepFileError(f"{where}: a STaR sweep has no datasets axis; set star.dataset (in base or as an axis)")
    if "datasets" in values:
        datasets = [_dataset(d, where, i) for i, d in enumerate(_list(values["datasets"], where, "datasets"))]
    overrides = {str(k): _list(v, where, str(k)) for k, v in values.items() if "." in str(k)}
    base = values.get("base") or {}
    executor = values.get("executor") or {}
    for key, v in (("base", base), ("executor", executor)):
        if not isinstance(v, dict):
            raise SweepFileError(f"{where}: {key} must be a mapping")
    spec = SweepSpec(
        str(values.get("name", name)),
        methods,
        seeds,
        datasets,
        overrides,
        base,
        executor,
        values.get("output_dir"),
        root,
        where,
        command,
    )
    cells(spec)  # every cell's settings are checked here, before anything runs
    return spec


def _list(value, where: str, key: str) -> list:
    if not isinstance(value, list) or not value:
        raise SweepFileError(f"{where}: {key} must be a non-empty list, got {value!r}")
    if len(set(map(repr, value))) != len(value):
        raise SweepFileError(f"{where}: {key} lists a value twice: {value!r}")
    return value


def _method_entry(entry, where: str) -> tuple[str, str, str | None]:
    """A methods entry -> (cell label, preset name, config file or None)."""
    if (
        isinstance(entry, dict)
        and set(entry) <= {"method", "config", "name"}
        and isinstance(entry.get("method"), str)
        and isinstance(entry.get("config"), str)
    ):
        label, preset, config = str(entry.get("name", entry["method"])), entry["method"], entry["config"]
    elif isinstance(entry, str):
        label, preset, config = entry, entry, None
    else:
        raise SweepFileError(
            f"{where}: methods: each entry is a method name or "
            f"{{method: NAME, config: FILE.yaml[, name: LABEL]}}, got {entry!r}"
        )
    if preset not in PRESETS:
        raise SweepFileError(f"{where}: methods: unknown method {preset!r}; `innerpo train --help` lists them")
    return label, preset, config


def _dataset(entry, where: str, i: int) -> dict:
    if isinstance(entry, str):
        return {"dataset": entry, "suite": None, "methods": None}
    if (
        isinstance(entry, dict)
        and isinstance(entry.get("dataset"), str)
        and not set(entry) - {"dataset", "suite", "methods"}
    ):
        methods = entry.get("methods")
        if methods is not None:
            # method labels (a --methods flag may narrow the methods to none of them: no cell then)
            methods = _list(methods, where, f"datasets[{i}].methods")
            if not all(isinstance(m, str) for m in methods):
                raise SweepFileError(f"{where}: datasets[{i}].methods must list method labels, got {methods!r}")
        return {"dataset": entry["dataset"], "suite": entry.get("suite"), "methods": methods}
    raise SweepFileError(
        f"{where}: datasets[{i}] must be a name or {{dataset: NAME, suite: SUITE[, methods: [LABEL, ...]]}}, "
        f"got {entry!r}"
    )


def setting_flags(rest: list[str]) -> dict:
    """`--a.b=v` / `--a.b v` flags -> nested dict; values parsed as YAML scalars (never code).
    Sweep and tune read their shared settings (a sweep file's `base:`) with it."""
    values, i = {}, 0
    while i < len(rest):
        arg = rest[i]
        if not arg.startswith("--") or "." not in arg.split("=", 1)[0]:
            raise SweepFileError(f"unrecognised argument {arg!r}")
        if "=" in arg:
            key, text = arg[2:].split("=", 1)
        elif i + 1 < len(rest):
            key, text, i = arg[2:], rest[i + 1], i + 1
        else:
            raise SweepFileError(f"{arg} needs a value")
        deep_update(values, nest(key, yaml.safe_load(text)))
        i += 1
    return values


def deep_update(target: dict, update: dict) -> None:
    """Merge nested `update` into `target` in place (a key of both, each a dict, merges)."""
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(target.get(k), dict):
            deep_update(target[k], v)
        else:
            target[k] = v


def nest(dotted: str, value) -> dict:
    """`training.lr`, 1e-4 -> {"training": {"lr": 1e-4}}."""
    out = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def _relative(path: str, root: Path) -> str:
    """A file named in the sweep file: relative to the sweep file when it is there."""
    candidate = root / path
    return str(candidate) if not Path(path).is_absolute() and candidate.is_file() else path


def _suite_path(suite: str, root: Path) -> str:
    candidate = root / suite
    if suite.endswith((".yaml", ".yml")) and not Path(suite).is_absolute() and candidate.is_file():
        return str(candidate)
    return suite


def _star_entry(entry, where: str) -> str:
    """A STaR sweep's methods entry: `sft`, or a preset of `innerpo train` (its canonical name)."""
    if not isinstance(entry, str):
        raise SweepFileError(f"{where}: methods: a STaR sweep's entries are `sft` or a method name, got {entry!r}")
    if entry == "sft":
        return entry
    try:
        return resolve_method_name(entry)
    except ValueError as e:
        raise SweepFileError(f"{where}: methods: {e}") from None


def cells(spec: SweepSpec) -> list[Cell]:
    """The grid, seeds outermost: the first seed of every method runs before any second
    seed, so later seeds find the reference cache already written."""
    if spec.command == "star":
        return _star_cells(spec)
    out_dir = spec.sweep_dir()
    datasets = spec.datasets or [None]
    keys = list(spec.overrides)
    result, seen = [], {}
    for seed, entry, data, combo in itertools.product(
        spec.seeds, spec.methods, datasets, itertools.product(*spec.overrides.values())
    ):
        chosen = dict(zip(keys, combo))
        method, preset, config = _method_entry(entry, spec.name)
        if data and data.get("methods") is not None and method not in data["methods"]:
            continue
        name = cell_name(method, seed, data["dataset"] if data else None, chosen)
        if name in seen:
            raise SweepFileError(
                f"two cells would share the directory name {name!r} ({seen[name]} and {chosen}); give "
                "datasets distinct names"
            )
        seen[name] = chosen
        where = f"{spec.source}, cell {name}"
        try:
            cfg = preset_config(preset)
            if config:
                cfg = apply_yaml(cfg, _relative(config, spec.root))
            cfg = apply_values(cfg, spec.base, f"{where} (base)")
            if data:
                layer = {"data": {"dataset": data["dataset"]}}
                if data["suite"]:
                    layer["eval"] = {"suite": data["suite"]}
                cfg = apply_values(cfg, layer, f"{where} (datasets)")
            for key, value in chosen.items():
                cfg = apply_values(cfg, nest(key, value), f"{where} ({key})")
            cfg = apply_values(cfg, {"training": {"seed": seed}}, where)
        except ValueError as e:
            raise SweepFileError(str(e)) from e
        cfg = apply_values(
            cfg,
            {
                "method_name": preset,
                "output_dir": str(out_dir / name),
                "config": None,
                "eval": {"suite": _suite_path(cfg.eval.suite, spec.root)},
            },
            where,
        )
        axes = {"method": method, "seed": seed, **({"dataset": data["dataset"]} if data else {}), **chosen}
        result.append(Cell(name, out_dir / name, cfg, axes))
    return result


def _star_cells(spec: SweepSpec) -> list[Cell]:
    """A STaR sweep's grid (see the module docstring), seeds outermost."""
    keys, result = list(spec.overrides), []
    for seed, entry, combo in itertools.product(spec.seeds, spec.methods, itertools.product(*spec.overrides.values())):
        chosen = dict(zip(keys, combo))
        name = cell_name(entry, seed, None, chosen)
        where = f"{spec.source}, cell {name}"
        label = _star_entry(entry, where)
        try:
            cfg = StarRunConfig()
            cfg = apply_values(cfg, {"star": {"strategy": "sft"}}, where) if label == "sft" else with_method(cfg, label)
            cfg = apply_values(cfg, spec.base, f"{where} (base)")
            for key, value in chosen.items():
                cfg = apply_values(cfg, nest(key, value), f"{where} ({key})")
            cfg = apply_values(cfg, {"star": {"seed": seed}, "output_dir": str(spec.sweep_dir() / name)}, where)
        except ValueError as e:
            raise SweepFileError(str(e)) from e
        result.append(Cell(name, spec.sweep_dir() / name, cfg, {"method": entry, "seed": seed, **chosen}))
    return result
