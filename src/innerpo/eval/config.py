"""The evaluation settings: which suite, how many pairs per shift, batching and samples."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalConfig:
    suite: str = "synthetic"
    """Eval suite: `synthetic`, `genies-alpaca`, `genies-math`, ... (see `innerpo data list`) or a YAML file."""
    max_pairs: int | None = 100
    """Pairs per shift: the first N *scorable* pairs in file order (those the length rule keeps); None evaluates all."""
    batch_size: int = 16
    max_tokens_per_batch: int | None = 4096
    """Size evaluation batches by tokens: as many pairs (grouped by length) as keep a batch's padded chosen + rejected tokens within this budget (at least one pair, at most batch_size); None: batch_size pairs each. Batches of similar pairs sized this way pad less than a fixed number of pairs per batch."""
    coherence_threshold: float = 0.5
    """Flag a shift when the adapter's chosen-completion NLL grows by more than this many nats per token over base."""
    min_pairs: int = 50
    """Mark a shift (table and summary) whose source has fewer scorable pairs than this: its accuracy is too uncertain to lean on."""
    name: str | None = None
    """`innerpo eval` writes into RUN/eval-<name>/; default: the suite plus the settings that differ from the run's own."""
    samples_per_shift: int = 3
    """Probe prompts per shift (the first scorable ones) whose greedy continuations, base and adapter, go to samples.md; 0: none."""
    max_new_tokens: int = 48
    """Longest generated continuation in samples.md (tokens)."""
