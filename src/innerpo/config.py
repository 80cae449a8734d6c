"""Run configuration: plain dataclasses, filled from presets, a YAML file and the CLI.

Every field is a plain value so a resolved config round-trips through YAML
(``config.yaml`` in each run directory) and nothing in it is ever evaluated as code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from innerpo.errors import ConfigError, yaml_problem
from innerpo.methods.config import MethodConfig

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass
class ModelConfig:
    base_model: str = DEFAULT_MODEL
    """`smollm2-135m-instruct` (bundled, offline), `tiny-random` (built in-process), a Hugging Face id or a local directory."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights and compute dtype. float32 is the right choice on CPU."""
    trust_remote_code: bool = False
    """Allow a hub model to run its own Python code. Off unless you trust the source."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: float = 32.0
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input."""
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    """Module names to adapt; `all-linear` means every linear layer except the output head."""
    init_adapter: list[str] = field(default_factory=list)
    """Adapter directories (peft) merged into the base weights, in order, before the new LoRA: training starts from that model and it is the reference (e.g. DPO from an SFT checkpoint)."""


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
    """Compute the reference model's log-probs once (cached on disk under $INNERPO_CACHE) instead of a reference forward every step."""
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
    """Write a resumable checkpoint to RUN/checkpoints/step-N/ every N optimizer steps; 0: none (SIGTERM/SIGINT still write one)."""
    keep_last: int | None = None
    """Keep only the newest K checkpoints; None keeps all."""
    report_to: list[str] = field(default_factory=list)
    """Experiment trackers to stream metrics to: any of wandb, tensorboard, trackio, comma or space separated (empty: none)."""
    tracker_project: str = "innerpo"
    """Tracker project name (W&B project; TensorBoard writes under RUN/tensorboard/)."""
    tracker_group: str | None = None
    """Tracker group (a sweep sets it to the sweep's name)."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Compute precision: `bf16`/`fp16` run matrix multiplies in that dtype through autocast while LoRA weights, optimizer state, log-prob sums and losses stay float32 (innerpo.models.precision). fp32 is the CPU default; bf16 made a DPO step 1.9x faster on this avx512_bf16 CPU (benchmarks/vs_trl.py) and is recommended on GPUs that support it; fp16 needs a GPU."""


@dataclass
class EvalConfig:
    suite: str = "synthetic"
    """Eval suite: `synthetic`, `genies-alpaca`, `genies-math`, ... (see `innerpo data list`) or a YAML file."""
    max_pairs: int | None = 100
    """Pairs per shift: the first N *scorable* pairs in file order (those the length rule keeps); None evaluates all."""
    batch_size: int = 16
    max_tokens_per_batch: int | None = 4096
    """Size evaluation batches by tokens: as many pairs (grouped by length) as keep a batch's padded chosen + rejected tokens within this budget (at least one pair, at most batch_size); None: batch_size pairs each. Smaller batches of similar pairs pad less (GENIES alpaca_hard: 13% fewer padded tokens than 16 pairs per batch by total length)."""
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


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def flatten(values: dict, prefix: str = "") -> dict:
    """Nested dict → {"training.lr": ..., ...} (the flags' dotted names)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _merge(dc, values: dict, where: str):
    """Return a copy of dataclass `dc` with `values` (nested dict) applied, checking names."""
    names = {f.name: f for f in dataclasses.fields(dc)}
    updates = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(names))}")
        current = getattr(dc, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key!r} must be a mapping")
            value = _merge(current, value, f"{where}.{key}")
        updates[key] = value
    return dataclasses.replace(dc, **updates)


def apply_yaml(cfg: TrainConfig, path: str | Path) -> TrainConfig:
    """Overlay a YAML file (same nesting as the CLI flags) onto a config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(yaml_problem(path, e)) from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return _merge(cfg, values, str(path))


def apply_values(cfg: TrainConfig, values: dict, where: str) -> TrainConfig:
    """Overlay a nested dict (same nesting as the CLI flags) onto a config; `where` names
    the source in errors about unknown settings."""
    return _merge(cfg, values, where)


def from_dict(values: dict) -> TrainConfig:
    return _merge(TrainConfig(), values, "config")
