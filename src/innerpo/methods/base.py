"""A training method: how a micro-batch becomes loss inputs, and the objective itself.

The loop only knows the :class:`Method` protocol: `loss_inputs(model, batch)` runs the
forward passes the objective needs (the reference pass only when some loss asks for it),
`loss` maps those inputs to a scalar, and `after_backward(model)` may edit gradients
before the optimizer step (gradient-projection methods use it). Every method class,
paired or unpaired, satisfies it (a test checks), and innerpo.methods.build is the one
place that chooses and builds them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from innerpo.data.batching import PairBatch
from innerpo.losses.base import LossInputs
from innerpo.losses.combined import CombinedLoss
from innerpo.methods.kto import mismatched_kl_logps, needs_kl_inputs
from innerpo.models.forward import forward_pairs, logp_rows, seqs_of


@runtime_checkable
class Method(Protocol):
    """What the training loop, the reference cache and checkpoints read of a method."""

    loss: nn.Module  # LossInputs-like → LossOutput; has ``uses_reference``
    cacheable_reference: bool  # reference values can come from the on-disk table

    def bind(self, model) -> None:
        """Attach to the loaded model (hooks, capture points), before the optimizer collects parameters."""

    def loss_inputs(self, model, batch):
        """Run the forward passes for one micro-batch; return what ``loss`` reads."""

    def after_backward(self, model) -> dict[str, float]:
        """Edit gradients before the optimizer step; return metrics to log."""

    def parameters(self):
        """Trainable parameters the method owns (transforms), trained with the adapter."""


class OutputMethod(nn.Module):
    """Output-level objectives: sequence log-probs of policy and, if needed, reference."""

    # True when everything the method takes from the reference pass can be served from
    # the on-disk reference table (models.ref_cache); methods that read other reference
    # activations every step set it False.
    cacheable_reference = True

    def __init__(self, loss: CombinedLoss):
        super().__init__()
        self.loss = loss
        self.ref_table: dict[str, torch.Tensor] | None = None  # cached reference, by dataset index

    def bind(self, model) -> None:
        """Called once the model is loaded, before the optimizer collects parameters."""

    def use_reference_table(self, table: dict[str, torch.Tensor]) -> None:
        """Serve reference values from a precomputed table (see models.ref_cache)."""
        self.ref_table = table

    def reference_settings(self) -> dict:
        """Settings, besides tokenization and weights, that change `reference_rows` (cache key).
        The per-token statistics a loss reads from the reference (Mallows' entropies) are
        stored in the table too, so they are part of the key when there are any."""
        stats = self.loss.reference_stats
        return {"reference_stats": list(stats)} if stats else {}

    def reference_rows(self, model, batch: PairBatch) -> dict[str, torch.Tensor]:
        """Per-pair reference values, each [B, ...]; the caller disables the adapter and grad."""
        return logp_rows(model, batch, self.loss.reference_stats)

    def reference(self, model, batch: PairBatch) -> dict[str, torch.Tensor]:
        """`reference_rows` for this batch: looked up in the table when there is one, else computed."""
        device = batch.input_ids.device
        if self.ref_table is not None and batch.index is not None:
            return {k: v[batch.index.cpu()].to(device) for k, v in self.ref_table.items()}
        with torch.no_grad(), model.disable_adapter():
            return {k: v.detach() for k, v in self.reference_rows(model, batch).items()}

    def loss_inputs(self, model, batch: PairBatch) -> LossInputs:
        policy = forward_pairs(model, batch, stats=self.loss.policy_stats)
        inputs = LossInputs(policy.chosen, policy.rejected)
        if self.loss.uses_reference:
            inputs.ref_chosen, inputs.ref_rejected = seqs_of(self.reference(model, batch))
        if needs_kl_inputs(self.loss):  # KTO's mismatched KL reference point (see methods.kto)
            inputs.extra.update(mismatched_kl_logps(model, batch))
        return inputs

    def after_backward(self, model) -> dict[str, float]:
        return {}
