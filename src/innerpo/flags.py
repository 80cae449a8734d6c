"""Old command-line spellings, kept for one release: the table and its one translation.

`innerpo.cli.main` translates every command's arguments here before the command parses
them, so each command's parser (and its --help) knows only the current spellings
(the convention is in innerpo.cli's docstring). Each old spelling used prints one line on
stderr, `innerpo tune: --out is deprecated; use --output_dir`, and then works as the new
one. Sweep files' keys follow the flags: `out:` is read as `output_dir:` the same way.
"""

from __future__ import annotations

import re
import sys

from innerpo.errors import InputError

RENAMED = {  # command -> {old flag: new flag}
    "sweep": {"--out": "--output_dir"},
    "tune": {"--out": "--output_dir"},
    "report": {"--out": "--output_dir"},
    "eval": {"--genies_dir": "--data.genies_dir"},
    "data": {"--genies_dir": "--data.genies_dir"},
}
"""Besides these, any flag with a dash inside its name (`--startup-trials`, `--training.max-steps`) is the old spelling of the same name with underscores."""

RENAMED_KEYS = {"out": "output_dir"}
"""Sweep-file keys: old -> new."""

_FLAG = re.compile(r"--[A-Za-z][\w.-]*")


def new_spelling(command: str, flag: str) -> str | None:
    """The current spelling of an old `flag` of `command`; None when `flag` is current."""
    if flag in RENAMED.get(command, {}):
        return RENAMED[command][flag]
    if _FLAG.fullmatch(flag) and "-" in flag[2:]:
        return "--" + flag[2:].replace("-", "_")
    return None


def translate(command: str, args: list[str]) -> list[str]:
    """`args` with old flag spellings (`--flag=V` or `--flag V`) replaced by new ones; each
    old spelling used is named once on stderr. Nothing after a bare `--` is touched."""
    out, told = [], set()
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        flag, eq, value = arg.partition("=")
        new = new_spelling(command, flag)
        if new is not None:
            if flag not in told:
                deprecated(command, flag, new)
                told.add(flag)
            arg = new + eq + value
        out.append(arg)
    return out


def translate_keys(command: str, values: dict, where: str) -> dict:
    """A file's top-level `values` with old keys renamed (InputError when both spellings are given)."""
    for old, new in RENAMED_KEYS.items():
        if old in values:
            if new in values:
                raise InputError(f"{where}: give {new} only ({old} is its deprecated spelling)")
            deprecated(command, f"{where}: {old}", new)
            values = {new if k == old else k: v for k, v in values.items()}
    return values


def deprecated(command: str, old: str, new: str) -> None:
    print(f"innerpo {command}: {old} is deprecated; use {new}", file=sys.stderr)
