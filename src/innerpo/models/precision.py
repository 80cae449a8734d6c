"""Mixed precision: matrix multiplies in bfloat16 (or float16), everything that is kept in float32.

`--training.precision=fp32|bf16|fp16|auto`. `auto` resolves, on the device the run uses,
to bf16 where that device computes in bf16 at speed (a CUDA GPU that supports bfloat16; a
CPU with AVX512-BF16 or AMX instructions, read from /proc/cpuinfo), else to fp32
(:func:`resolve_precision`); what follows describes the resolved precision. With bf16 or fp16:
- the forward runs under `torch.autocast`, so matrix multiplies (linear, matmul, attention)
  take the low precision while the residual stream, norms, softmaxes and every reduction
  stay float32 (autocast's op lists; Llama-style RMSNorm upcasts on its own);
- the frozen base model's linear weights are stored in the low precision once
  (`prepare_model`): autocast would cast them to exactly these values on every call,
  so the numbers are the same, minus a cast of ~100M weights per forward pass (measured:
  about a fifth of a bf16 SmolLM2 step). A tied output head (the head is the embedding
  matrix) gets its own frozen low-precision copy and the embedding keeps float32, so the
  lookup is not rounded and the head's numbers are again the same as autocast's per-call
  cast (SmolLM2: a 49152x576 cast per step, ~30 ms of a ~1.3 s bf16 step, for 57 MB);
- attention on CPU runs in float32 (`FP32_SDPA`, a registered transformers attention
  function: queries, keys and values upcast, then the same SDPA, grouped-query heads read
  in place rather than copied per query head): torch's CPU bf16
  flash-attention backward ran 6x slower than its float32 one here (profile of a bf16
  SmolLM2 DPO step: 2.05 s of 6.7 s in it, against 0.33 s at fp32), and attention is a
  small share of the FLOPs at these lengths;
- LoRA weights, their gradients, the optimizer state and the loss reductions stay
  float32 (the loss is computed outside autocast on float32 log-probs);
- log-probs: the head's logits come out of a low-precision GEMM (accumulated in float32
  inside the kernel, rounded to bf16 on output: no CPU kernel returns float32 from bf16
  inputs); log-sum-exp, gather and per-sequence sums run in float32
  (innerpo.models.forward.token_logps).

The precision a model was prepared for is recorded here, keyed by the model object, so
the forward (innerpo.models.forward) enters the right autocast and the reference cache
(innerpo.models.ref_cache) keys tables by it, with no extra argument on either path.

fp16 needs float16 GEMM kernels and loss scaling: on CPU it is refused (CPUs lack fast
float16 GEMMs; the docs' performance page has the measurement); on a GPU the loop's
accelerate handles loss scaling (`accelerator_kwargs`).
"""

from __future__ import annotations

import weakref
from contextlib import nullcontext

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from innerpo.errors import ConfigError

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

_PREPARED: "weakref.WeakKeyDictionary[nn.Module, str]" = weakref.WeakKeyDictionary()


class PrecisionError(ConfigError):
    """A precision this device cannot run (named, with what to use instead)."""


FP32_SDPA = "innerpo_sdpa_fp32"


def _fp32_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers' SDPA attention with autocast off and q, k, v in float32; [B, T, H, Dh] out.

    Grouped-query attention with a mask (every padded batch) goes to torch's SDPA with
    `enable_gqa=True`: transformers instead copies each key/value head once per query head
    it serves (`repeat_kv`, there because CUDA kernels fall back to the slow math kernel on
    masked GQA) and sums the copies' gradients back, while the CPU kernel reads the shared
    heads in place. Same values up to summation order; a bf16 SmolLM2 (9 query heads on
    3 key/value heads) DPO step ~5% faster here. The rest (no mask: transformers already
    passes enable_gqa; position biases, softcapping, paged caches, returned weights) takes
    transformers' own path.
    """
    with torch.autocast(query.device.type, enabled=False):
        query, key, value = query.float(), key.float(), value.float()
        plain = not any(kwargs.get(k) for k in ("position_bias", "softcap", "cache", "output_attentions"))
        if attention_mask is None or key.shape[1] == query.shape[1] or not plain:
            return sdpa_attention_forward(
                module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
            )
        out = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, enable_gqa=True
        )
        return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(FP32_SDPA, _fp32_sdpa)
AttentionMaskInterface.register(FP32_SDPA, sdpa_mask)


def _base(model) -> nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


# CPU feature flags (Linux /proc/cpuinfo names) whose bf16 dot products make bf16 GEMMs faster than fp32.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (empty where the file does not exist: not Linux)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """`precision`, with `auto` replaced by what `device` runs fast: bf16 on a CUDA GPU that
    supports bfloat16 and on a CPU with AVX512-BF16 or AMX; fp32 elsewhere."""
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_flags() & set(CPU_BF16_FLAGS) else "fp32"
    return "fp32"  # other accelerators: nothing measured, the safe choice


def check_precision(precision: str, device: torch.device | str = "cpu") -> None:
    """Raise PrecisionError for an unknown precision or one this device cannot run well."""
    if precision not in (*DTYPES, "auto"):
        raise PrecisionError(f"--training.precision must be one of {', '.join(DTYPES)}, auto; got {precision!r}")
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    if precision == "fp16" and device.type == "cpu":
        raise PrecisionError(
            "--training.precision=fp16 needs a GPU: CPUs have no fast float16 matrix multiply "
            "(measured here ~2 GFLOP/s, 45x slower than fp32) and fp16 needs loss scaling; use bf16 on CPU"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise PrecisionError("--training.precision=bf16: this GPU does not support bfloat16; use fp16 or fp32")


def prepare_model(model, precision: str, device: torch.device | str | None = None):
    """Store the frozen base linear weights in the compute dtype and record `precision`.

    Weights that train (LoRA, anything with requires_grad), embeddings, tied heads and
    norms keep their dtype. `device`: where the model will run (default: where its
    weights are now); CPU gets float32 attention. Returns the model.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    check_precision(precision, device)
    precision = resolve_precision(precision, device)
    dtype = DTYPES[precision]
    base = _base(model)
    if dtype is not None:
        tied = {id(p) for p in base.get_input_embeddings().parameters()}
        for module in base.modules():
            if type(module) is nn.Linear and not module.weight.requires_grad and id(module.weight) not in tied:
                module.weight.data = module.weight.data.to(dtype)
                if module.bias is not None:
                    module.bias.data = module.bias.data.to(dtype)
        _untie_head(base, dtype)
        if device.type == "cpu" and base.config._attn_implementation == "sdpa":
            base.set_attn_implementation(FP32_SDPA)
    _PREPARED[base] = precision
    return model


def _untie_head(base: nn.Module, dtype: torch.dtype) -> None:
    """Give a frozen output head tied to the input embeddings its own copy in `dtype`."""
    head = base.get_output_embeddings()
    embedding = base.get_input_embeddings().weight
    if (
        type(head) is not nn.Linear
        or head.weight is not embedding
        or head.weight.requires_grad
        or head.bias is not None
    ):
        return
    copy = nn.Linear(head.in_features, head.out_features, bias=False, device="meta")
    copy.weight = nn.Parameter(embedding.detach().to(dtype), requires_grad=False)
    base.set_output_embeddings(copy)


def precision_of(model) -> str:
    """The precision `model` was prepared for (fp32 when never prepared)."""
    return _PREPARED.get(_base(model), "fp32")


def autocast(model):
    """The autocast context the model's forward runs in (a no-op at fp32)."""
    precision = precision_of(model)
    if DTYPES[precision] is None:
        return nullcontext()
    device = next(model.parameters()).device.type
    return torch.autocast(device_type=device, dtype=DTYPES[precision])


def accelerator_kwargs(precision: str) -> dict:
    """Checks `precision` on the device accelerate will pick, then the Accelerator's
    arguments: fp16 gets accelerate's loss scaler; bf16 needs none (the forward enters
    its own autocast), and fp32/bf16 pass nothing, since accelerate's state is one per
    process and several runs (tests, in-process sweeps) must be able to share it."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    check_precision(precision, device)
    return {"mixed_precision": "fp16"} if resolve_precision(precision, device) == "fp16" else {}
