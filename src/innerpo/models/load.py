"""Load a base model and tokenizer by name, and wrap it with a LoRA adapter."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from innerpo.errors import ConfigError
from innerpo.models import bundled, tiny
from innerpo.models.config import ModelConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_base(cfg: ModelConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Base model (eval mode, frozen) and tokenizer, with a pad token set."""
    dtype = DTYPES[cfg.dtype]
    name = cfg.base_model
    if name == tiny.ALIAS:
        model, _ = tiny.build()
        model = model.to(dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            _source(name), dtype=dtype, trust_remote_code=cfg.trust_remote_code
        )
    tok = load_tokenizer(cfg)
    for adapter in cfg.init_adapter:  # start from (and refer to) an earlier adapter's model
        model = merge_adapter(model, adapter)
    model.config.pad_token_id = tok.pad_token_id
    model.requires_grad_(False)
    model.eval()
    return model, tok


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
    return get_peft_model(model, lora)


def load_adapter(model: PreTrainedModel, adapter_dir: str | Path) -> PeftModel:
    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)


def merge_adapter(model: PreTrainedModel, adapter_dir: str | Path) -> PreTrainedModel:
    """The model with a saved LoRA adapter merged into its weights (a plain model again)."""
    path = Path(adapter_dir)
    if not (path / "adapter_config.json").is_file():
        raise ConfigError(f"--model.init_adapter: {path} is not an adapter directory (no adapter_config.json)")
    return PeftModel.from_pretrained(model, str(path)).merge_and_unload()
