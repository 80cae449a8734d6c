"""The model settings: which base model, its dtype and the LoRA adapter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass
class ModelConfig:
    base_model: str = DEFAULT_MODEL
    """`smollm2-135m-instruct` (bundled, offline), `tiny-random` (built in-process), a Hugging Face id or a local directory."""  # noqa: E501
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
    """Adapter directories (peft) merged into the base weights, in order, before the new LoRA: training starts from that model and it is the reference (e.g. DPO from an SFT checkpoint)."""  # noqa: E501
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2", "flex_attention"] = "auto"
    """Attention kernel passed to transformers. auto: its default (SDPA), with innerpo's own routes (float32 attention for CPU bf16; padding-free packed scoring without gradients). eager, flash_attention_2 (needs the flash-attn package and a CUDA GPU), flex_attention (CUDA for training): every pass runs that kernel, padded."""  # noqa: E501
    load_in_4bit: bool = False
    """Store the frozen base weights in 4-bit NF4 through bitsandbytes (QLoRA; pip install 'innerpo[qlora]'). The LoRA adapter stays float32; the reference is the same quantized model with the adapter off."""  # noqa: E501
    load_in_8bit: bool = False
    """Store the frozen base weights in 8-bit (LLM.int8) through bitsandbytes (pip install 'innerpo[qlora]'); exclusive with load_in_4bit."""  # noqa: E501
