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
        "built-in procedurally generated shifts (no files needed): " + "; ".join(f"{k}: {v}" for k, v in synthetic.DESCRIPTIONS.items()),
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


def get_suite(name: str) -> Suite:
    if name in SUITES:
        return SUITES[name]
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"eval suite file not found: {path}")
        return _from_yaml(path)
    raise ValueError(f"unknown eval suite {name!r}; built-in: {', '.join(SUITES)}, or a .yaml file")


def _from_yaml(path: Path) -> Suite:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("shifts"), dict) or not data["shifts"]:
        raise ValueError(f"{path}: expected a mapping with a non-empty 'shifts' mapping")
    shifts = {}
    for key, value in data["shifts"].items():
        if isinstance(value, str):
            value = {"dataset": value}
        if not isinstance(value, dict) or not isinstance(value.get("dataset"), str) or set(value) - {"dataset", "split"}:
            raise ValueError(f"{path}: shift {key!r} needs 'dataset' (and optionally 'split'), got {value!r}")
        shifts[str(key)] = Shift(value["dataset"], str(value.get("split", "test")))
    return Suite(str(data.get("name", path.stem)), shifts, str(data.get("description", "")))
