"""The canonical preference pair and its validation.

A pair follows TRL's conventions: `prompt`, `chosen`, `rejected`, either as plain
strings or as chat messages (`prompt` a list of {"role", "content"} messages, `chosen`
and `rejected` lists holding one assistant message). Validation happens once, when a
source is read, and names the source and row of anything malformed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innerpo.data.implicit_prompt import is_implicit_prompt_row, parse_messages, split_shared_prefix
from innerpo.errors import DataError

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Pair:
    """prompt: a string or chat messages; chosen/rejected: the assistant's completion text."""

    prompt: str | tuple[tuple[str, str], ...]
    chosen: str
    rejected: str

    def prompt_messages(self) -> Messages:
        """The prompt as chat messages (a plain prompt becomes one user message)."""
        if isinstance(self.prompt, str):
            return [{"role": "user", "content": self.prompt}]
        return [{"role": r, "content": c} for r, c in self.prompt]

    def prompt_text(self) -> str:
        """The prompt as plain text, for models without a chat template."""
        if isinstance(self.prompt, str):
            return self.prompt
        return "\n".join(c for _, c in self.prompt)


def parse_completion(value: Any, field: str, where: str) -> str:
    """A completion: a non-empty string, or a list holding one assistant message."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        msgs = parse_messages(value, field, where)
        if len(msgs) != 1 or msgs[0][0] != "assistant":
            raise DataError(
                f"{where}: {field!r} must hold exactly one assistant message, got roles {[r for r, _ in msgs]}"
            )
        text = msgs[0][1]
    else:
        raise DataError(f"{where}: {field!r} must be a string or a list of messages, got {type(value).__name__}")
    if not text.strip():
        raise DataError(f"{where}: {field!r} is empty")
    return text


def read_json_list(path: Path) -> list:
    """A JSON file holding a list of rows; errors name the file."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of rows (use .jsonl for one row per line)")
    return data


def parse_prompt(row: Any, columns: tuple[str, ...], where: str) -> str | tuple[tuple[str, str], ...]:
    """Check that `row` is a mapping with `columns`, and return its validated prompt."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object with {'/'.join(columns)}, got {type(row).__name__}")
    missing = [k for k in columns if k not in row or row[k] is None]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)} (has: {', '.join(sorted(map(str, row))) or 'nothing'})")
    prompt = row["prompt"]
    if isinstance(prompt, list):
        return parse_messages(prompt, "prompt", where)
    if not isinstance(prompt, str):
        raise DataError(f"{where}: 'prompt' must be a string or a list of messages, got {type(prompt).__name__}")
    return prompt


def parse_pair(row: Any, where: str) -> Pair:
    """Validate one row (a mapping with prompt/chosen/rejected, or TRL's implicit-prompt
    conversations, innerpo.data.implicit_prompt); `where` names file and row."""
    if is_implicit_prompt_row(row):
        row = split_shared_prefix(row, where)
    prompt = parse_prompt(row, ("prompt", "chosen", "rejected"), where)
    return Pair(
        prompt, parse_completion(row["chosen"], "chosen", where), parse_completion(row["rejected"], "rejected", where)
    )
