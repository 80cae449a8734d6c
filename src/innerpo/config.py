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
    """Share of optimizer steps spent in linear warmup before cosine decay to zero."""
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


@dataclass
class EvalConfig:
    suite: str = "synthetic"
    """Eval suite: `synthetic`, `genies-alpaca`, `genies-math`, ... (see `innerpo data list`) or a YAML file."""
    max_pairs: int | None = 100
    """Pairs per shift (first N in file order); None evaluates all."""
    batch_size: int = 16
    coherence_threshold: float = 0.5
    """Flag a shift when the adapter's chosen-completion NLL grows by more than this many nats per token over base."""


@dataclass
class MethodConfig:
    """Which objective to train, and its hyperparameters. Presets (`innerpo train NAME`) fill these."""

    losses: list[str] = field(default_factory=lambda: ["dpo"])
    """Loss components, summed with `weights` (e.g. `--method.losses dpo sft`)."""
    weights: list[float] = field(default_factory=lambda: [1.0])
    """One weight per loss."""
    beta: float = 0.1
    """Temperature of the implicit reward (DPO family)."""
    label_smoothing: float = 0.0
    """Probability that a preference label is flipped (cDPO); in [0, 0.5)."""
    ipo_normalize: bool = True
    """IPO on per-token mean log-ratios (TRL's convention); False uses summed log-ratios as in the IPO paper's equation."""
    discopop_tau: float = 0.05
    """DiscoPOP temperature of the logistic/exponential blend; > 0 (paper and TRL: 0.05)."""
    aot_unpaired: bool = False
    """AOT: sort chosen and rejected log-ratios separately (TRL `aot_unpaired`) instead of paired log-ratio differences."""
    simpo_gamma: float = 0.5
    """SimPO target margin γ >= 0 in reward units (TRL convention: loss = -log σ(β·Δmean − γ)); ignored when simpo_gamma_beta_ratio is set."""
    simpo_gamma_beta_ratio: float | None = None
    """SimPO margin given as γ/β (the SimPO paper's code, typically 0.3–1.0); when set, γ = ratio·β and simpo_gamma is ignored."""
    cpo_alpha: float = 1.0
    """CPO weight >= 0 of the NLL term on chosen completions (TRL default 1.0)."""
    kto_desirable_weight: float = 1.0
    """KTO weight λ_D > 0 of desirable (chosen / label=True) examples."""
    kto_undesirable_weight: float = 1.0
    """KTO weight λ_U > 0 of undesirable (rejected / label=False) examples."""
    kto_kl_estimate: Literal["mismatched", "batch"] = "mismatched"
    """KTO reference point z0: `mismatched` (TRL) reads KL log-probs of mismatched prompt/completion pairs from LossInputs.extra; `batch` uses the batch-mean log-ratio clamped at 0."""
    # --- gradient projection (projgrad / projbp, innerpo.methods.projection) ---
    projection: Literal["none", "projgrad", "projbp"] = "none"
    """Project gradients onto each LoRA module's reference chosen-minus-rejected direction: `projgrad` edits lora_B weight gradients after backward, `projbp` edits module output gradients during backprop; `none` is plain training."""
    orth_scale: float = 0.5
    """Projection: multiplier in [0, 1] of the update's part orthogonal to the preference direction (1 only drops the backward parallel part, 0 keeps motion along the direction alone)."""
    proj_clip: float | None = None
    """Projection: cap each projected gradient vector's norm at this multiple of the RMS norm of the original vectors in the same call (lora_B columns; completion tokens); None: off."""
    # --- hidden-state methods (InnerPO) ---
    hidden_loss: Literal["none", "innerpo", "prefvec", "mse", "rank"] = "none"
    """Hidden-state term added to the output-level losses with weight `alpha`."""
    alpha: float = 1.0
    """Weight of the hidden-state term."""
    output_loss: str | None = None
    """Shorthand for hidden-state methods: use this one output-level loss (weight 1) instead of `losses`; `none` trains the hidden term alone."""
    collect: Literal["hs", "side"] = "hs"
    """Where states are read: `hs` the residual stream after each chosen block; `side` the inputs of its attention output and MLP down projections."""
    layers: str = "0.25,0.5,0.75"
    """Blocks to collect: indices, negative indices, fractions of depth, ranges (`4:12:2`, `0.25:0.75`), comma lists."""
    transform: Literal["none", "supr", "ether", "etherplus", "oft", "hra", "ortho"] = "none"
    """Map applied to all four pooled states before the hidden loss (trainable ones train with the adapter)."""
    align_method: str = "pars_rat"
    """InnerDPO margin (see innerpo.inner.align): pars_rat (s/‖d_ref‖ − 1, scale-free, 0 at the start), para_signed, para_signed_log, logodds, cosine_policy_margin, ..."""
    hidden_beta: float = 1.0
    """Scale of the hidden margin inside InnerDPO / rank losses."""
    trust_region: float | None = None
    """Clamp each sample's and layer's hidden margin at this value (None: off)."""
    trust_region_mode: Literal["upper", "both"] = "upper"
    """`upper`: one-sided clamp min(m, τ); `both`: clamp to [−τ, τ]."""
    token_constraint: float = 0.0
    """Weight of the penalty on the rejected side drifting further from the reference than the chosen side (token level; 0 = off)."""
    sink_threshold: float | None = None
    """Drop "attention sink" tokens whose norm exceeds this multiple of the row's median before pooling (None: keep all)."""


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


def _merge(dc, values: dict, where: str):
    """Return a copy of dataclass `dc` with `values` (nested dict) applied, checking names."""
    names = {f.name: f for f in dataclasses.fields(dc)}
    updates = {}
    for key, value in values.items():
        if key not in names:
            raise ValueError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(names))}")
        current = getattr(dc, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}: {key!r} must be a mapping")
            value = _merge(current, value, f"{where}.{key}")
        updates[key] = value
    return dataclasses.replace(dc, **updates)


def apply_yaml(cfg: TrainConfig, path: str | Path) -> TrainConfig:
    """Overlay a YAML file (same nesting as the CLI flags) onto a config."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return _merge(cfg, values, str(path))


def from_dict(values: dict) -> TrainConfig:
    return _merge(TrainConfig(), values, "config")
