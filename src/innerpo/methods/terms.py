"""Which components a method config names: its weighted terms, and whether its transform is inert."""

from __future__ import annotations

from innerpo.methods.hidden import inert_transform_reason
from innerpo.methods.registry import entry


def method_terms(cfg) -> list[tuple[str, float]]:
    """(loss name, weight) pairs of a method: the output-level losses, then the hidden term."""
    if cfg.output_loss is None:
        if len(cfg.weights) != len(cfg.losses):
            raise ValueError(
                f"got {len(cfg.losses)} losses but {len(cfg.weights)} weights; give one --method.weights value per loss"
            )
        terms = list(zip(cfg.losses, cfg.weights))
    else:
        terms = [] if cfg.output_loss == "none" else [(cfg.output_loss, 1.0)]
    if cfg.hidden_loss != "none":
        terms.append((cfg.hidden_loss, cfg.alpha))
    return terms


def inert_reason(cfg) -> str | None:
    """Why the configured transform cannot change the hidden term, or None (see methods.hidden)."""
    if cfg.hidden_loss == "none":
        return None
    term = entry(cfg.hidden_loss)
    return inert_transform_reason(cfg.transform, cfg.hidden_loss, term.cls, term.params(cfg))
