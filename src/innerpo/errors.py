"""The project's input-error types: a bad config, option, suite or data file.

Each message names where (file, row, field or flag) and what was expected. The command
line turns them into one line on stderr and exit code 2 (innerpo.cli), like a bad flag.
"""

from __future__ import annotations


class InputError(ValueError):
    """Something the user gave cannot be used; the message says where and what was expected."""


class ConfigError(InputError):
    """A setting (flag, config file, eval suite) is invalid."""


class DataError(InputError):
    """A data source or row cannot be used; the message names where and why."""


def yaml_problem(path, e) -> str:
    """One line for a PyYAML error: the file, line and what the parser expected."""
    mark = getattr(e, "problem_mark", None)
    where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
    return f"{where}: not valid YAML ({getattr(e, 'problem', None) or type(e).__name__})"
