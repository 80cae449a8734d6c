"""The training data settings: which pairs, how many, and how they are batched and cut."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    """Training pairs: `synthetic` (built-in suite, in_domain shift), `synthetic:<shift>`, `genies:<name>`, a JSON/JSONL/Parquet file, a `datasets` directory or a hub id."""
    genies_dir: str | None = None
    """Local GENIES `distributions/` directory; when unset, GENIES names load from the hub dataset wassname/genies_preferences."""
    split: str = "train"
    """Split used for training."""
    max_train_pairs: int | None = 640
    """Use at most this many training pairs (the first N after a shuffle with a fixed data seed, the same for every training seed); None keeps all."""
    batch_size: int = 8
    """Pairs per micro-batch."""
    group_by_length: bool = True
    """Batch pairs of similar length together (order still shuffled per epoch and seed) to cut padding."""
    max_length: int = 256
    """Maximum tokens of prompt + completion, per sequence."""
    truncation: Literal["drop", "prompt_left"] = "prompt_left"
    """`prompt_left` cuts the prompt from the left to fit; `drop` drops the pair. Completions are never cut: a pair whose completion alone does not fit (with at least 8 prompt tokens) is dropped, and drops are reported."""
    chat_template: Literal["auto", "off"] = "auto"
    """`auto` wraps prompts in the tokenizer's chat template when it has one."""
