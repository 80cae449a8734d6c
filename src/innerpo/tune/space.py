"""Search spaces: which settings a study varies, over what range, on what scale.

A space maps a dotted config key (the flags' names) to one distribution:

    training.lr: {low: 1.0e-5, high: 1.0e-3, log: true}    # float, log-uniform
    method.orth_scale: {low: 0.0, high: 1.0}                # float, uniform
    training.max_steps: {low: 10, high: 40, step: 10}       # int when low and high are ints
    method.layers: {choices: ["0.5", "0.25,0.5,0.75"]}      # categorical

Scales (log-uniform for rates, temperatures and weights that matter by their order of
magnitude, uniform for shares in [0, 1]) follow the research notes' Optuna setup.
Default spaces per method family come from `default_space`; a `--space` YAML file
replaces them. PyYAML reads `1e-5` (no dot) as a string, so numeric strings are read as
numbers here. Nothing in a space file is evaluated as code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from innerpo.config import apply_values, flatten, to_dict
from innerpo.experiments.sweep_file import nest
from innerpo.methods.build import build_method
from innerpo.train.config import TrainConfig


class SpaceError(ValueError):
    """A search space that cannot be used (file, key and what is wrong)."""


@dataclass(frozen=True)
class Param:
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple | None = None

    def suggest(self, trial, name: str):
        if self.choices is not None:
            return trial.suggest_categorical(name, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), step=self.step, log=self.log)

    def as_dict(self) -> dict:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        out = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


Space = dict[str, Param]

LR = Param(1e-5, 1e-3, log=True)
NO_BETA = {"sft", "simper"}  # losses that read no β


def default_space(cfg: TrainConfig) -> Space:
    """The family's space for a preset's config: learning rate for all; β (log) for the
    reference-based output losses; the hidden term's weight α (log), layers and, for
    InnerDPO, the align method; the projection's orth_scale (uniform)."""
    m = cfg.method
    space: Space = {"training.lr": LR}
    if not set(m.losses) <= NO_BETA and m.output_loss not in NO_BETA | {"none"}:
        space["method.beta"] = Param(0.01, 1.0, log=True) if cfg.method.beta < 1 else Param(0.5, 5.0, log=True)
    if m.hidden_loss != "none":
        space["method.alpha"] = Param(0.01, 10.0, log=True)
        space["method.layers"] = Param(choices=("0.5", "0.25,0.5,0.75", "0.25:0.75"))
        if m.hidden_loss == "innerpo":
            space["method.align_method"] = Param(choices=("pars_rat", "para_signed", "logodds", "cosine_policy_margin"))
    if m.projection != "none":
        space["method.orth_scale"] = Param(0.0, 1.0)
    return space


def load_space(path: str | Path) -> Space:
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"search space file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpaceError(f"{path}: not valid YAML: {e}") from e
    return parse_space(values, str(path))


def parse_space(values, where: str) -> Space:
    if not isinstance(values, dict) or not values:
        raise SpaceError(f"{where}: expected a non-empty mapping of dotted config keys to distributions")
    return {str(key): _param(spec, f"{where}: {key}") for key, spec in values.items()}


def _param(spec, where: str) -> Param:
    if not isinstance(spec, dict):
        raise SpaceError(f"{where}: expected {{low, high[, log, step]}} or {{choices: [...]}}, got {spec!r}")
    unknown = set(spec) - {"low", "high", "log", "step", "choices"}
    if unknown:
        raise SpaceError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; use low, high, log, step or choices")
    if "choices" in spec:
        if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
            raise SpaceError(f"{where}: choices must be a non-empty list, alone")
        return Param(choices=tuple(spec["choices"]))
    if "low" not in spec or "high" not in spec:
        raise SpaceError(f"{where}: needs low and high (or choices)")
    low, high, step = _number(spec["low"], where, "low"), _number(spec["high"], where, "high"), spec.get("step")
    step = None if step is None else _number(step, where, "step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: log must be true or false, got {log!r}")
    if not low < high:
        raise SpaceError(f"{where}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise SpaceError(f"{where}: a log scale needs low > 0, got {low}")
    if log and step is not None:
        raise SpaceError(f"{where}: step and log cannot be combined (Optuna samples one or the other)")
    return Param(low, high, log, step)


def _number(value, where: str, field: str):
    if isinstance(value, bool):
        raise SpaceError(f"{where}: {field} must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SpaceError(f"{where}: {field} must be a number, got {value!r}") from None


def check_space(space: Space, cfg: TrainConfig, where: str) -> None:
    """Every key names a setting of `cfg`, and every edge of its range is a value the
    config accepts; raises SpaceError naming the key."""
    known = flatten(to_dict(cfg))
    for key, param in space.items():
        if key not in known:
            raise SpaceError(f"{where}: {key!r} is not a setting; settings look like training.lr or method.beta")
        if key in ("output_dir", "config", "method_name", "training.seed"):
            raise SpaceError(f"{where}: {key!r} cannot be searched (seeds are re-run by the sweep, not tuned)")
        for value in param.choices or (param.low, param.high):
            try:
                build_method(apply_values(cfg, nest(key, value), where).method)  # the method's own checks
            except ValueError as e:
                raise SpaceError(f"{where}: {key}={value!r}: {e}") from e


def suggest(trial, space: Space) -> dict:
    """One trial's values, {dotted key: value}."""
    return {key: param.suggest(trial, key) for key, param in space.items()}


def space_record(space: Space) -> dict:
    return {key: param.as_dict() for key, param in space.items()}
