"""Which attention kernel and which base-weight storage a model may use, checked before loading.

`--model.attn_implementation` and `--model.load_in_4bit` / `--model.load_in_8bit` depend on
packages and devices that may be missing. :func:`check_model_options` refuses what cannot
run on this machine with one message naming the flag, before a run writes anything
(train/validate.py calls it; `load_base` calls it again for the other entry points), and
:func:`quantization_config` builds the bitsandbytes settings transformers loads with.

Routes (what each choice means for innerpo's own passes):
- auto / sdpa: transformers' SDPA; at bf16 on CPU attention runs in float32
  (innerpo.models.precision), and no-grad scoring runs padding-free (innerpo.models.packed,
  a per-pair SDPA loop on every device: correct on CUDA, tests/gpu checks it against the
  padded pass; a FlexAttention/varlen kernel for it is still to be written and measured);
- eager, flash_attention_2, flex_attention: that kernel for every pass, padded (the packed
  path reproduces SDPA's function only, so it steps aside).
bitsandbytes' CPU backend (0.45 on) runs 4-bit and 8-bit layers here, slowly; on CUDA they
are what QLoRA is for.
"""

from __future__ import annotations

import importlib.util

import torch

from innerpo.errors import ConfigError
from innerpo.models.config import ModelConfig

ATTENTION = ("auto", "sdpa", "eager", "flash_attention_2", "flex_attention")


def default_device() -> torch.device:
    """Where a run will compute: the CUDA device when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_model_options(cfg: ModelConfig, device: torch.device | str | None = None, training: bool = True) -> None:
    """ConfigError naming the flag for an attention kernel or quantization this machine cannot run."""
    device = torch.device(device) if device is not None else default_device()
    attn = cfg.attn_implementation
    if attn not in ATTENTION:
        raise ConfigError(f"--model.attn_implementation={attn!r}: expected one of {', '.join(ATTENTION)}")
    if attn == "flash_attention_2":
        from transformers.utils import is_flash_attn_2_available

        if device.type != "cuda" or not is_flash_attn_2_available():
            raise ConfigError(
                "--model.attn_implementation=flash_attention_2 needs a CUDA GPU and the flash-attn package "
                f"(pip install flash-attn); {'it is not installed' if device.type == 'cuda' else 'this run is on ' + device.type}. "  # noqa: E501
                "Use sdpa (the default, auto) instead"
            )
    if attn == "flex_attention":
        if importlib.util.find_spec("torch.nn.attention.flex_attention") is None:
            raise ConfigError("--model.attn_implementation=flex_attention needs torch >= 2.5; use sdpa")
        if training and device.type != "cuda":
            raise ConfigError(
                f"--model.attn_implementation=flex_attention cannot train on {device.type}: FlexAttention has no "
                "backward pass there (torch implements it for CUDA); use sdpa (the default, auto)"
            )
    if cfg.load_in_4bit and cfg.load_in_8bit:
        raise ConfigError("--model.load_in_4bit and --model.load_in_8bit exclude each other; choose one")
    if cfg.load_in_4bit or cfg.load_in_8bit:
        flag = "--model.load_in_4bit" if cfg.load_in_4bit else "--model.load_in_8bit"
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(f"{flag} needs bitsandbytes: pip install 'innerpo[qlora]'")
        if device.type not in ("cuda", "cpu"):
            raise ConfigError(f"{flag}: bitsandbytes does not run on {device.type}; use a CUDA GPU")
        if cfg.dtype == "float16" and device.type == "cpu":
            raise ConfigError(f"{flag} with --model.dtype=float16 needs a GPU; use float32 or bfloat16 on CPU")


def quantization_config(cfg: ModelConfig, compute_dtype: torch.dtype):
    """transformers' BitsAndBytesConfig for `cfg` (None without quantization). 4-bit is NF4 with
    double quantization (QLoRA's recipe), computing in `compute_dtype`."""
    if not (cfg.load_in_4bit or cfg.load_in_8bit):
        return None
    from transformers import BitsAndBytesConfig

    if cfg.load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def attn_argument(cfg: ModelConfig) -> str | None:
    """The `attn_implementation` to pass transformers (None: its default)."""
    return None if cfg.attn_implementation == "auto" else cfg.attn_implementation
