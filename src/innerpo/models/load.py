"""Load a base model and tokenizer by name, and wrap it with a LoRA adapter."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from innerpo.errors import ConfigError
from innerpo.models import bundled, tiny
from innerpo.models.backends import attn_argument, check_model_options, default_device, quantization_config
from innerpo.models.config import ModelConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_base(cfg: ModelConfig, training: bool = True) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Base model (eval mode, frozen) and tokenizer, with a pad token set.

    `--model.attn_implementation` and 4-/8-bit storage (innerpo.models.backends) are applied
    here; `training`: the model will be trained (some kernels have no backward on CPU)."""
    check_model_options(cfg, training=training)
    dtype = DTYPES[cfg.dtype]
    name = cfg.base_model
    quant = quantization_config(cfg, dtype)
    attn = attn_argument(cfg)
    if name == tiny.ALIAS and quant is None:
        model, _ = tiny.build()
        model = model.to(dtype)
        if attn is not None:
            model.set_attn_implementation(attn)
    else:
        extra = {"attn_implementation": attn} if attn is not None else {}
        if quant is not None:  # bitsandbytes places the quantized weights itself
            extra.update(quantization_config=quant, device_map={"": str(default_device())})
        model = AutoModelForCausalLM.from_pretrained(
            _tiny_dir() if name == tiny.ALIAS else _source(name),
            dtype=dtype,
            trust_remote_code=cfg.trust_remote_code,
            **extra,
        )
    tok = load_tokenizer(cfg)
    for adapter in cfg.init_adapter:  # start from (and refer to) an earlier adapter's model
        model = merge_adapter(model, adapter)
    model.config.pad_token_id = tok.pad_token_id
    model.requires_grad_(False)
    model.eval()
    return model, tok


def _tiny_dir() -> Path:
    """tiny-random saved once per process (a quantized load reads weights from a directory)."""
    global _TINY_DIR
    if _TINY_DIR is None:
        import tempfile

        _TINY_DIR = Path(tempfile.mkdtemp(prefix="innerpo-tiny-"))
        model, tok = tiny.build()
        model.save_pretrained(_TINY_DIR)
    return _TINY_DIR


_TINY_DIR: Path | None = None


def _source(name: str) -> str | Path:
    return bundled.converted_dir() if name == bundled.ALIAS else name


def load_tokenizer(cfg: ModelConfig) -> PreTrainedTokenizerBase:
    """The model's tokenizer alone (cheap; used to check data before anything is written), with a pad token set."""
    if cfg.base_model == tiny.ALIAS:
        tok = tiny.build_tokenizer()
    else:
        tok = AutoTokenizer.from_pretrained(_source(cfg.base_model), trust_remote_code=cfg.trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def num_layers(cfg: ModelConfig) -> int:
    """Decoder blocks of the model, read from its config without loading weights."""
    if cfg.base_model == tiny.ALIAS:
        return tiny.config(tiny.build_tokenizer()).num_hidden_layers
    config = AutoConfig.from_pretrained(_source(cfg.base_model), trust_remote_code=cfg.trust_remote_code)
    return getattr(config, "num_hidden_layers", None) or config.get_text_config().num_hidden_layers


def block_module_names(cfg: ModelConfig, layers: list[int]) -> dict[int, list[str]]:
    """Per chosen block, the paths of its linear modules (innerpo.models.capture), from the
    model's config alone: the model is built on the meta device, so no weight is read or
    allocated."""
    from innerpo.models.capture import decoder_layers, linear_module_names

    if cfg.base_model == tiny.ALIAS:
        config = tiny.config(tiny.build_tokenizer())
    else:
        config = AutoConfig.from_pretrained(_source(cfg.base_model), trust_remote_code=cfg.trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=cfg.trust_remote_code)
    blocks = decoder_layers(model)
    return {l: linear_module_names(blocks[l]) for l in layers}


def model_settings(cfg: ModelConfig) -> dict:
    """What, besides the weights' fingerprint, identifies the base model in cache keys."""
    settings = {"model": cfg.base_model, "dtype": cfg.dtype}
    # other kernels and quantized weights give other numbers; the defaults keep existing keys
    if cfg.attn_implementation != "auto":
        settings["attn_implementation"] = cfg.attn_implementation
    if cfg.load_in_4bit or cfg.load_in_8bit:
        settings["quantized"] = "4bit" if cfg.load_in_4bit else "8bit"
    if cfg.init_adapter:
        settings["init_adapter"] = [str(Path(a).resolve()) for a in cfg.init_adapter]
    return settings


def add_lora(model: PreTrainedModel, cfg: ModelConfig, seed: int) -> PeftModel:
    """Wrap with a fresh LoRA adapter; the reference is this model with the adapter disabled."""
    torch.manual_seed(seed)
    target = cfg.target_modules
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=target[0] if target == ["all-linear"] else target,
        task_type="CAUSAL_LM",
    )
    with _peft_wrapping():
        return get_peft_model(model, lora)


def load_adapter(model: PreTrainedModel, adapter_dir: str | Path) -> PeftModel:
    with _peft_wrapping():
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)


@contextmanager
def _peft_wrapping():
    """peft 0.18's PeftModel reads transformers' deprecated `is_gradient_checkpointing` alias,
    which warns in every run's log; the call is peft's, with nothing for a user to change."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def merge_adapter(model: PreTrainedModel, adapter_dir: str | Path) -> PreTrainedModel:
    """The model with a saved LoRA adapter merged into its weights (a plain model again)."""
    path = Path(adapter_dir)
    if not (path / "adapter_config.json").is_file():
        raise ConfigError(f"--model.init_adapter: {path} is not an adapter directory (no adapter_config.json)")
    return PeftModel.from_pretrained(model, str(path)).merge_and_unload()
