"""A training method: how a micro-batch becomes loss inputs, and the objective itself.

The loop only knows this interface: `loss_inputs(model, batch)` runs the forward
passes the objective needs (the reference pass only when some loss asks for it),
`loss` maps those inputs to a scalar, and `after_backward(model)` may edit gradients
before the optimizer step (gradient-projection methods use it).
"""

from __future__ import annotations

import torch
from torch import nn

from innerpo.config import MethodConfig
from innerpo.data.batching import PairBatch
from innerpo.losses.base import LossInputs, SeqLogps
from innerpo.losses.combined import CombinedLoss
from innerpo.losses.registry import build_method_loss
from innerpo.models.forward import forward_pairs


class OutputMethod(nn.Module):
    """Output-level objectives: sequence log-probs of policy and, if needed, reference."""

    # True when everything the method takes from the reference pass can be served from
    # the on-disk reference table (models.ref_cache); methods that read other reference
    # activations every step set it False.
    cacheable_reference = True

    def __init__(self, cfg: MethodConfig):
        super().__init__()
        self.loss: CombinedLoss = build_method_loss(cfg)
        self.ref_table: dict[str, torch.Tensor] | None = None  # cached reference, by dataset index

    def use_reference_table(self, table: dict[str, torch.Tensor]) -> None:
        """Serve reference log-probs from a precomputed table (see models.ref_cache)."""
        self.ref_table = table

    def loss_inputs(self, model, batch: PairBatch) -> LossInputs:
        policy = forward_pairs(model, batch)
        inputs = LossInputs(policy.chosen, policy.rejected)
        if self.loss.uses_reference:
            if self.ref_table is not None and batch.index is not None:
                t = {k: v[batch.index.cpu()].to(policy.chosen.sum.device) for k, v in self.ref_table.items()}
                inputs.ref_chosen = SeqLogps(t["chosen_sum"], t["chosen_ntok"])
                inputs.ref_rejected = SeqLogps(t["rejected_sum"], t["rejected_ntok"])
            else:
                with torch.no_grad(), model.disable_adapter():
                    ref = forward_pairs(model, batch)
                inputs.ref_chosen, inputs.ref_rejected = ref.chosen.detach(), ref.rejected.detach()
        return inputs

    def after_backward(self, model) -> dict[str, float]:
        return {}


def build_method(cfg: MethodConfig) -> OutputMethod:
    return OutputMethod(cfg)
