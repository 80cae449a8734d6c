"""Eval suites: a named mapping from shift name to a data source and split.

Built-in suites are listed in SUITES. A user suite is a YAML file:

    name: my-suite
    shifts:
      in_domain: {dataset: genies:alpaca_easy, split: test}
      harder: {dataset: data/hard.jsonl}

(`split` defaults to `test`; for a file it is ignored.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from innerpo.data import synthetic
from innerpo.errors import ConfigError, yaml_problem
from innerpo.eval.shift_families import GENIES_PAIRS, MORAL_TRANSFER, ORTHOGONAL, RESEARCH_SOURCES


@dataclass(frozen=True)
class Shift:
    dataset: str
    split: str = "test"


@dataclass(frozen=True)
class Suite:
    name: str
    shifts: dict[str, Shift]
    description: str = ""


def _genies(name: str, description: str, **shifts: str) -> Suite:
    return Suite(name, {k: Shift(f"genies:{v}") for k, v in shifts.items()}, description)


SUITES: dict[str, Suite] = {
    "synthetic": Suite(
        "synthetic",
        {s: Shift(f"synthetic:{s}") for s in synthetic.SHIFTS},
        "built-in procedurally generated shifts (no files needed): "
        + "; ".join(f"{k}: {v}" for k, v in synthetic.DESCRIPTIONS.items()),
    ),
    "genies-alpaca": _genies(
        "genies-alpaca",
        "train on alpaca_easy; GENIES shifts from it (needs --data.genies_dir or the hub)",
        in_domain="alpaca_easy",
        difficulty_scaling="alpaca_hard",
        quality="alpaca_high_quality",
        spurious_length="alpaca_long",
        truthfulness="truthful_qa",
        sycophancy="sycophancy_mimicry",
    ),
    "genies-math": _genies(
        "genies-math",
        "train on math_easy; GENIES shifts from it",
        in_domain="math_easy",
        difficulty_scaling="math_hard",
        related_skill="math",
        unrelated_skill="change_my_view",
    ),
    "genies-code": _genies(
        "genies-code",
        "train on code_easy; GENIES shifts from it",
        in_domain="code_easy",
        difficulty_scaling="code_hard",
        unrelated_skill="alpaca_easy",
    ),
}


def _genies_pair_suites() -> dict[str, Suite]:
    """The GENIES shift list's pairs, one suite per pair and one per source (innerpo.eval.shift_families)."""
    out: dict[str, Suite] = {}
    for source, target, category in GENIES_PAIRS:
        out[f"genies-{source}-to-{target}"] = _genies(
            f"genies-{source}-to-{target}",
            f"GENIES pair ({category}): train on {source}",
            in_domain=source,
            **{category: target},
        )
    for source in dict.fromkeys(s for s, _, _ in GENIES_PAIRS):
        targets = {t: c for s, t, c in GENIES_PAIRS if s == source}
        shifts = {"in_domain": Shift(f"genies:{source}")}
        # one target: named by its category (as in the per-pair suite); several: by the target
        shifts.update({(c if len(targets) == 1 else t): Shift(f"genies:{t}") for t, c in targets.items()})
        out[f"genies-from-{source}"] = Suite(
            f"genies-from-{source}", shifts, f"train on {source}; every GENIES target of it in the local data"
        )
    for source in RESEARCH_SOURCES:
        shifts = dict(out[f"genies-from-{source}"].shifts)
        shifts.update({"moral_transfer": Shift(MORAL_TRANSFER), "orthogonal": Shift(ORTHOGONAL, "data")})
        out[f"research-{source}"] = Suite(
            f"research-{source}",
            shifts,
            f"the research journal's shifts for {source}: GENIES targets, moral_transfer (ETHICS justice) and orthogonal (medical) from the hub",
        )
    return out


SUITES.update(_genies_pair_suites())

AUTO = "auto"
# Hand-written suites preferred by `auto` for their training source.
_AUTO_PREFERRED = {
    "genies:alpaca_easy": "genies-alpaca",
    "genies:math_easy": "genies-math",
    "genies:code_easy": "genies-code",
}


def auto_suite(train_dataset: str) -> str:
    """The suite for a training dataset (the research CLI's --eval.train_dataset): synthetic
    for synthetic data; for GENIES data its hand-written suite, else `genies-from-<name>`."""
    if train_dataset == "synthetic" or train_dataset.startswith("synthetic:"):
        return "synthetic"
    if train_dataset in _AUTO_PREFERRED:
        return _AUTO_PREFERRED[train_dataset]
    name = train_dataset.partition(":")[2] if train_dataset.startswith("genies:") else None
    if name and f"genies-from-{name}" in SUITES:
        return f"genies-from-{name}"
    raise ConfigError(
        f"--eval.suite=auto: no suite is known for training data {train_dataset!r} "
        "(auto knows synthetic and GENIES sources with shifts); name one with --eval.suite"
    )


def get_suite(name: str, train_dataset: str | None = None) -> Suite:
    """A built-in suite, a YAML file, or `auto` (needs the training dataset)."""
    if name == AUTO:
        if train_dataset is None:
            raise ConfigError("--eval.suite=auto needs the training dataset to choose from")
        name = auto_suite(train_dataset)
    if name in SUITES:
        return SUITES[name]
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"eval suite file not found: {path}")
        return _from_yaml(path)
    raise ConfigError(
        f"--eval.suite={name!r}: unknown eval suite; built-in: {', '.join(SUITES)}, `auto`, or a .yaml file"
    )


def _from_yaml(path: Path) -> Suite:
    try:
        with path.open() as f:  # a stream, so errors name the file
            data = yaml.load(f, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        raise ConfigError(yaml_problem(path, e)) from None
    if not isinstance(data, dict) or not isinstance(data.get("shifts"), dict) or not data["shifts"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty 'shifts' mapping")
    shifts = {}
    for key, value in data["shifts"].items():
        if isinstance(value, str):
            value = {"dataset": value}
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("dataset"), str)
            or set(value) - {"dataset", "split"}
        ):
            raise ConfigError(f"{path}: shift {key!r} needs 'dataset' (and optionally 'split'), got {value!r}")
        shifts[str(key)] = Shift(value["dataset"], str(value.get("split", "test")))
    return Suite(str(data.get("name", path.stem)), shifts, str(data.get("description", "")))


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    f"{node.start_mark.name}, line {key_node.start_mark.line + 1}: {key!r} is given twice (duplicate shift name?)"
                )
            seen.add(key)
        return super().construct_mapping(node, deep)
