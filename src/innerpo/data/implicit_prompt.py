"""TRL's implicit-prompt conversational format: no `prompt` column; `chosen` and `rejected`
are whole conversations that share their opening turns (e.g. UltraFeedback binarized:
[user, assistant] each, the same user turn).

The prompt is the longest shared prefix of the two message lists (same role and
content, message by message); after it each side must hold exactly one assistant
message, its completion. This is TRL's `extract_prompt` rule (trl.data_utils), applied
per row with a named error instead of a silent odd split. The chat-message check both
formats share, :func:`parse_messages`, lives here (innerpo.data.pairs builds on this module).
"""

from __future__ import annotations

from typing import Any

from innerpo.errors import DataError


def parse_messages(value: Any, field: str, where: str) -> tuple[tuple[str, str], ...]:
    """A non-empty list of {"role", "content"} messages as (role, content) tuples; errors name `where` and `field`."""
    if not value:
        raise DataError(f"{where}: {field!r} is an empty message list")
    out = []
    for j, msg in enumerate(value):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str) or not isinstance(msg.get("content"), str):
            raise DataError(
                f"{where}: {field}[{j}] must be a message like {{'role': 'user', 'content': '...'}}, got {msg!r:.80}"
            )
        out.append((msg["role"], msg["content"]))
    return tuple(out)


def is_implicit_prompt_row(row: Any) -> bool:
    return (
        isinstance(row, dict)
        and row.get("prompt") is None
        and isinstance(row.get("chosen"), list)
        and isinstance(row.get("rejected"), list)
    )


def split_shared_prefix(row: dict, where: str) -> dict:
    """{"prompt": messages, "chosen": [assistant], "rejected": [assistant]} from a row with whole conversations."""
    chosen, rejected = (
        parse_messages(row["chosen"], "chosen", where),
        parse_messages(row["rejected"], "rejected", where),
    )
    for field, msgs in (("chosen", chosen), ("rejected", rejected)):
        if not any(role == "assistant" for role, _ in msgs):
            raise DataError(
                f"{where}: {field!r} is a chat list without an assistant turn (roles {[r for r, _ in msgs]}); expected the shared prompt turns then one assistant message"
            )
    k = 0
    while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
        k += 1
    if k == 0:
        raise DataError(
            f"{where}: no 'prompt' column, and 'chosen' and 'rejected' share no opening message to use as the prompt"
        )
    for field, msgs in (("chosen", chosen), ("rejected", rejected)):
        rest = msgs[k:]
        if len(rest) != 1 or rest[0][0] != "assistant":
            raise DataError(
                f"{where}: after the {k} shared prompt message(s), {field!r} must hold exactly one assistant message, "
                f"got roles {[r for r, _ in rest]}"
                + (" (chosen and rejected are identical)" if chosen == rejected else "")
            )
    as_dicts = lambda msgs: [{"role": r, "content": c} for r, c in msgs]  # noqa: E731
    return {"prompt": as_dicts(chosen[:k]), "chosen": as_dicts(chosen[k:]), "rejected": as_dicts(rejected[k:])}
