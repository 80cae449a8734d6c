"""Collect activations during a forward pass the method runs anyway (no extra pass).

Three places, at the chosen decoder blocks:
- `hs`: the residual stream after block l (the block's output);
- `side`: module-side activations inside block l, the inputs of the attention output
  projection (`o_proj`) and of the MLP down projection (`down_proj`);
- `modules`: the *outputs* of the linear modules of block l whose path inside the block
  (`self_attn.q_proj`, `mlp.up_proj`, ...) matches a regular expression in full
  (:func:`module_points`). This is the research code's ``collect_input=False`` with its
  ``collection_keys_out`` (wassname/repr-preference-optimization, ``vast2``,
  ``reprpo/interventions/reprpo/config.py``, ``ReprPOConfig``). With a LoRA adapter the
  hook sits on peft's wrapper at that path, so the policy's output includes the
  adapter's update and the reference's (adapter disabled) does not.
Hooks are registered for the duration of one `with` block and always removed.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import torch
from torch import Tensor, nn

SIDE_MODULES = ("self_attn.o_proj", "mlp.down_proj")

DEFAULT_MODULE_PATTERN = r".*\.(q|k|v|qkv|gate|up)_proj"
"""The research code's ``collection_keys_out`` (q, k, v, qkv, gate, up projections) as one pattern."""


def decoder_layers(model) -> nn.ModuleList:
    """The model's stack of decoder blocks (peft-wrapped or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = getattr(base.base_model, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"cannot find the decoder blocks of {type(base).__name__} (expected .model.layers)")
    return layers


def linear_module_names(block: nn.Module) -> list[str]:
    """Paths inside `block` of its linear modules, as a plain model names them: a peft
    LoRA wrapper counts by its own path (its `base_layer` and `lora_*` parts are not listed)."""
    out = []
    for name, module in block.named_modules():
        parts = name.split(".")
        if not name or any(p == "base_layer" or p.startswith("lora_") for p in parts):
            continue
        if isinstance(getattr(module, "base_layer", module), nn.Linear):
            out.append(name)
    return out


def matching_modules(names: list[str], pattern: str) -> list[str]:
    """The names `pattern` matches in full; ValueError naming the pattern and some names
    that exist when it matches none (or is not a valid regular expression)."""
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"--method.collect_modules={pattern!r} is not a regular expression: {e}") from None
    found = [n for n in names if rx.fullmatch(n)]
    if not found:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise ValueError(
            f"--method.collect_modules={pattern!r} matches no linear module of the collected blocks (matched in full "
            f"against paths inside a block); they have: {shown or 'none'}; e.g. "
            "--method.collect_modules='.*\\.(q|v)_proj'"
        )
    return found


def module_points(model, layers: list[int], pattern: str) -> dict[str, nn.Module]:
    """`<layer>.<path>` → module, for the linear modules of each chosen block whose path matches `pattern`."""
    blocks = decoder_layers(model)
    points = {}
    for l in layers:
        for name in matching_modules(linear_module_names(blocks[l]), pattern):
            points[f"{l}.{name}"] = blocks[l].get_submodule(name)
    return points


def capture_points(model, layers: list[int], where: str, pattern: str | None = None) -> dict[str, nn.Module]:
    """Name → module whose output (`hs`, `modules`) or input (`side`) is captured."""
    blocks = decoder_layers(model)
    if where == "modules":
        return module_points(model, layers, pattern or DEFAULT_MODULE_PATTERN)
    if where == "hs":
        return {str(l): blocks[l] for l in layers}
    if where == "side":
        points = {}
        for l in layers:
            for path in SIDE_MODULES:
                module = blocks[l].get_submodule(path)
                points[f"{l}.{path.split('.')[-1]}"] = getattr(module, "base_layer", None) or module
        return points
    raise ValueError(f"collect must be 'hs', 'side' or 'modules', got {where!r}")


def in_backward() -> bool:
    """True while autograd runs a backward pass in this thread: a module called then is
    gradient checkpointing's recomputation (innerpo.models.checkpointing), not a forward."""
    return torch._C._current_graph_task_id() != -1


@contextmanager
def capture(points: dict[str, nn.Module], where: str):
    """Yields a dict filled, during the forward, with name → [N, T, D] activations.

    Calls during a backward (gradient checkpointing recomputing a block while the hooks
    are still registered) are ignored, so the states stored are the forward's own, the
    ones the loss was computed from."""
    store: dict[str, Tensor] = {}
    handles = []
    for name, module in points.items():
        if where in ("hs", "modules"):

            def hook(mod, args, output, name=name):
                if not in_backward():
                    store[name] = output[0] if isinstance(output, tuple) else output

            handles.append(module.register_forward_hook(hook))
        else:

            def pre_hook(mod, args, name=name):
                if not in_backward():
                    store[name] = args[0]

            handles.append(module.register_forward_pre_hook(pre_hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
