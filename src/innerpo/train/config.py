"""A training run's settings: the optimizer and schedule (TrainingConfig) and the whole
run (TrainConfig), which holds every component's settings.

Every field is a plain value so a resolved config round-trips through YAML
(``config.yaml`` in each run directory) and nothing in it is ever evaluated as code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from innerpo.config import merge
from innerpo.data.config import DataConfig
from innerpo.eval.config import EvalConfig
from innerpo.methods.config import MethodConfig
from innerpo.methods.presets import preset_method, resolve_method_name
from innerpo.models.config import ModelConfig


@dataclass
class TrainingConfig:
    lr: float = 1e-4
    """Peak learning rate (AdamW)."""
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    """Share of optimizer steps spent in linear warmup before the schedule (see `schedule`)."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm; 0 disables it."""
    grad_accum: int = 1
    """Micro-batches per optimizer step. Logged metrics are means over all of them."""
    epochs: float = 1.0
    """Passes over the training pairs (ignored when max_steps is set)."""
    max_steps: int | None = None
    """Cap on optimizer steps."""
    seed: int = 42
    ref_cache: bool = True
    """Compute the reference model's log-probs once (cached on disk under $INNERPO_CACHE) instead of a reference forward every step."""  # noqa: E501
    log_every: int = 1
    """Write a metrics.jsonl row every N optimizer steps."""
    eval_every: int = 25
    """Evaluate preference accuracy on a fixed held-out subset every N steps; 0 disables it."""
    eval_pairs: int = 32
    """Size of that fixed subset."""
    schedule: Literal["cosine", "constant_with_warmup", "linear"] = "cosine"
    """Learning-rate schedule after the linear warmup: cosine or linear decay to zero, or constant."""
    warmup_steps: int | None = None
    """Warmup in optimizer steps; when set it wins over warmup_ratio."""
    skip_first_eval: bool = False
    """Skip the periodic evaluation at step 0 (before any update)."""
    save_every: int = 0
    """Write a resumable checkpoint to RUN/checkpoints/step-N/ every N optimizer steps; 0: none (SIGTERM/SIGINT still write one)."""  # noqa: E501
    keep_last: int | None = None
    """Keep only the newest K checkpoints; None keeps all."""
    report_to: list[str] = field(default_factory=list)
    """Experiment trackers to stream metrics to: any of wandb, tensorboard, trackio, comma or space separated (empty: none)."""  # noqa: E501
    tracker_project: str = "innerpo"
    """Tracker project name (W&B project; TensorBoard writes under RUN/tensorboard/)."""
    tracker_group: str | None = None
    """Tracker group (a sweep sets it to the sweep's name)."""
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    """Compute precision: `bf16`/`fp16` run matrix multiplies in that dtype through autocast while LoRA weights, optimizer state, log-prob sums and losses stay float32 (innerpo.models.precision); fp16 needs a GPU. `auto`: bf16 where the device computes it fast (CUDA GPUs with bf16; CPUs with AVX512-BF16 or AMX), else fp32. The default stays fp32 so results, cache keys and the published tables do not change with the machine a run lands on; pass auto (or bf16) for speed."""  # noqa: E501
    gradient_checkpointing: bool = False
    """Recompute each decoder block's activations in the backward pass instead of keeping them (non-reentrant torch checkpointing): less memory for long sequences and large models, about one more forward of compute per step."""  # noqa: E501


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    method_name: str = "dpo"
    """Preset name, recorded in the run directory."""
    output_dir: str | None = None
    """Run directory; default ./outputs/<method>-<timestamp>."""
    config: str | None = None
    """YAML file whose values override the preset; command-line flags override both."""


def preset_config(name: str) -> TrainConfig:
    """A run of preset `name` (a preset or an alias) with every other setting at its default."""
    name = resolve_method_name(name)
    return TrainConfig(method=preset_method(name), method_name=name)


def from_dict(values: dict) -> TrainConfig:
    return merge(TrainConfig(), values, "config")
