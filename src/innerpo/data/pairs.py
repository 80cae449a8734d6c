"""The canonical preference pair and its validation.

A pair follows TRL's conventions: `prompt`, `chosen`, `rejected`, either as plain
strings or as chat messages (`prompt` a list of {"role", "content"} messages, `chosen`
and `rejected` lists holding one assistant message). Validation happens once, when a
source is read, and names the source and row of anything malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Messages = list[dict[str, str]]


class DataError(ValueError):
    """A data source or row cannot be used; the message names where and why."""


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


def _messages(value: Any, field: str, where: str) -> tuple[tuple[str, str], ...]:
    if not value:
        raise DataError(f"{where}: {field!r} is an empty message list")
    out = []
    for j, msg in enumerate(value):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str) or not isinstance(msg.get("content"), str):
            raise DataError(f"{where}: {field}[{j}] must be a message like {{'role': 'user', 'content': '...'}}, got {msg!r:.80}")
        out.append((msg["role"], msg["content"]))
    return tuple(out)


def _completion(value: Any, field: str, where: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        msgs = _messages(value, field, where)
        if len(msgs) != 1 or msgs[0][0] != "assistant":
            raise DataError(f"{where}: {field!r} must hold exactly one assistant message, got roles {[r for r, _ in msgs]}")
        text = msgs[0][1]
    else:
        raise DataError(f"{where}: {field!r} must be a string or a list of messages, got {type(value).__name__}")
    if not text.strip():
        raise DataError(f"{where}: {field!r} is empty")
    return text


def parse_pair(row: Any, where: str) -> Pair:
    """Validate one row (a mapping with prompt/chosen/rejected); `where` names file and row."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object with prompt/chosen/rejected, got {type(row).__name__}")
    missing = [k for k in ("prompt", "chosen", "rejected") if k not in row or row[k] is None]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)} (has: {', '.join(sorted(map(str, row))) or 'nothing'})")
    prompt = row["prompt"]
    if isinstance(prompt, list):
        prompt = _messages(prompt, "prompt", where)
    elif not isinstance(prompt, str):
        raise DataError(f"{where}: 'prompt' must be a string or a list of messages, got {type(prompt).__name__}")
    return Pair(prompt, _completion(row["chosen"], "chosen", where), _completion(row["rejected"], "rejected", where))
