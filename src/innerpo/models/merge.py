"""Score with the LoRA adapter folded into the weights, leaving the model exactly as it was.

A LoRA linear layer computes x·Wᵀ + s·(x·Aᵀ)·Bᵀ: next to the base GEMM, two skinny ones
([n × 576]·[576 × 16] for SmolLM2 at rank 16) that a CPU runs far below its GEMM speed,
plus an add. For a no-grad pass the same function is one GEMM with W + s·B·A. On GENIES
alpaca_hard at fp32 this took 9% off the adapter's scoring pass here (0.99 → 0.90 s per
pair, 32 pairs, one thread).

peft's `merge_adapter` / `unmerge_adapter` edit the base weights in place; unmerging
subtracts the delta again, which in floating point does not give back the same weights
(and the reference cache keys tables by a fingerprint of the base weights). So here each
adapted layer gets a merged *copy* for the duration of the pass, the adapter is switched
off, and the original weight tensors are put back afterwards, untouched. The copies cost
the adapted weights' size once more while inside (SmolLM2-135M: ~420 MB).

Only where it pays and is exact up to rounding: plain LoRA on `nn.Linear` layers (no DoRA
or other variants), float32 base weights on the CPU. bf16 base weights would round the
small delta away (W + s·B·A stored in bf16 loses most of s·B·A), so bf16 models keep the
separate LoRA path.

On CUDA: bypassed (the device check in `_lora_layers`). The gain measured here comes from
a CPU running rank-16 GEMMs far below its peak; on a GPU those are cheap next to the base
GEMM, and a merged copy would cost the adapted weights' size again in device memory (a
1B model: ~2.5 GB at fp32), where memory is what bounds the batch. The separate LoRA path
is exact everywhere, so bypassing changes no number beyond rounding.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


def _lora_layers(model) -> list | None:
    """The model's LoRA layers when every one can be merged as above, else None."""
    from peft.tuners.lora.layer import Linear as LoraLinear
    from peft.tuners.lora.layer import LoraLayer

    if not hasattr(model, "disable_adapter"):
        return None
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    for layer in layers:
        if type(layer) is not LoraLinear or layer.merged or getattr(layer, "lora_variant", None):
            return None
        weight = layer.base_layer.weight
        if weight.dtype != torch.float32 or weight.device.type != "cpu":
            return None
    return layers or None


@contextmanager
def merged_adapter(model):
    """Inside, `model` runs with its active LoRA adapters merged into copies of the base
    weights and the adapters switched off; yields whether it merged (False: nothing changed,
    the adapter runs as usual). The original weight tensors are restored on exit."""
    layers = _lora_layers(model)
    if layers is None:
        yield False
        return
    originals = []
    try:
        with torch.no_grad():
            for layer in layers:
                weight = layer.base_layer.weight
                merged = weight.detach().clone()
                for name in layer.active_adapters:
                    if name in layer.lora_A:
                        merged += layer.get_delta_weight(name)
                originals.append((layer.base_layer, weight))
                layer.base_layer.weight = nn.Parameter(merged, requires_grad=False)
        with model.disable_adapter():
            yield True
    finally:
        for module, weight in originals:
            module.weight = weight
