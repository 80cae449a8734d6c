"""Collect activations during a forward pass the method runs anyway (no extra pass).

Two places, at the chosen decoder blocks:
- `hs`: the residual stream after block l (the block's output);
- `side`: module-side activations inside block l, the inputs of the attention output
  projection (`o_proj`) and of the MLP down projection (`down_proj`).
Hooks are registered for the duration of one `with` block and always removed.
"""

from __future__ import annotations

from contextlib import contextmanager

from torch import Tensor, nn

SIDE_MODULES = ("self_attn.o_proj", "mlp.down_proj")


def decoder_layers(model) -> nn.ModuleList:
    """The model's stack of decoder blocks (peft-wrapped or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = getattr(base.base_model, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"cannot find the decoder blocks of {type(base).__name__} (expected .model.layers)")
    return layers


def capture_points(model, layers: list[int], where: str) -> dict[str, nn.Module]:
    """Name → module whose output (`hs`) or input (`side`) is captured."""
    blocks = decoder_layers(model)
    if where == "hs":
        return {str(l): blocks[l] for l in layers}
    if where == "side":
        points = {}
        for l in layers:
            for path in SIDE_MODULES:
                module = blocks[l].get_submodule(path)
                points[f"{l}.{path.split('.')[-1]}"] = getattr(module, "base_layer", None) or module
        return points
    raise ValueError(f"collect must be 'hs' or 'side', got {where!r}")


@contextmanager
def capture(points: dict[str, nn.Module], where: str):
    """Yields a dict filled, during the forward, with name → [N, T, D] activations."""
    store: dict[str, Tensor] = {}
    handles = []
    for name, module in points.items():
        if where == "hs":

            def hook(mod, args, output, name=name):
                store[name] = output[0] if isinstance(output, tuple) else output

            handles.append(module.register_forward_hook(hook))
        else:

            def pre_hook(mod, args, name=name):
                store[name] = args[0]

            handles.append(module.register_forward_pre_hook(pre_hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
