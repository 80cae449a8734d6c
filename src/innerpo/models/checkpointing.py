"""Gradient (activation) checkpointing: `--training.gradient_checkpointing`.

Each decoder block keeps only its input during the forward and recomputes its inside in
the backward pass (transformers' per-layer checkpointing, torch's *non-reentrant*
checkpoint). Non-reentrant matters here, for three readers of activations inside the
blocks:
- the shared-prompt pass (innerpo.models.forward) needs a key/value cache that carries
  gradient; transformers drops the cache of checkpointed layers in training, so with
  checkpointing on that path steps aside for the single [2B, T] pass (same function of
  the weights; `forward._single_pass_only`). Passes without gradient (the reference pass,
  scoring, generation) are not checkpointed by transformers and keep every fast path;
- hidden-state capture (innerpo.models.capture) keeps tensors made inside a block. A
  non-reentrant checkpoint keeps the original autograd graph and only refills its saved
  tensors by recomputation, so gradients reach a captured intermediate exactly as
  without checkpointing (a reentrant one would have built it without a graph);
- ProjBP's tensor hooks (innerpo.methods.projection) sit on LoRA outputs inside blocks:
  again on the original graph, so each fires once per backward.
The recomputation reruns the blocks' modules; the forward hooks that capture states and
attach ProjBP's tensor hooks are removed before the backward starts (their `with` blocks
close when the forward returns), and capture ignores calls made during a backward in
any case (`capture.in_backward`), so a recomputation can never overwrite a stored state.

Inputs need no `requires_grad` trick (peft's `enable_input_require_grads`): that is for
the reentrant variant, whose output carries no gradient unless an input does.
"""

from __future__ import annotations

from torch import nn


def _base(model) -> nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def enable_checkpointing(model) -> None:
    """Turn on non-reentrant checkpointing of every decoder block of `model` (peft-wrapped or not)."""
    base = _base(model)
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ValueError(
            f"--training.gradient_checkpointing: {type(base).__name__} does not support gradient checkpointing"
        )
    kwargs = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5.25; the older name warns there
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    # transformers also hooks the input embeddings to make their output require grad, which
    # only the reentrant variant needs; a hook on the model would also turn off the
    # shared-prompt and packed passes (forward._single_pass_only), so it goes
    base.disable_input_require_grads()


def is_checkpointing(model) -> bool:
    """True when some module of `model` has checkpointing switched on."""
    return any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())
