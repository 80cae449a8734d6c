"""SFT on prompt/completion rows: the `sft` loss on unpaired data whose labels are all true.

STaR's filtered rationales are demonstrations (question → correct rationale), not pairs,
so they are saved in TRL's unpaired format with `label: true` and trained with the `sft`
loss (innerpo.losses.sft): each completion's per-token mean NLL, averaged over the
batch. The loop switches to this method, as to KTO's, when the training source holds
unpaired rows (innerpo.methods.build); one forward per micro-batch, no
reference. A row labelled false (undesirable) cannot be imitated, so it is refused.
"""

from __future__ import annotations

from torch import nn

from innerpo.data.batching import UnpairedBatch
from innerpo.errors import DataError
from innerpo.losses.base import LossInputs
from innerpo.losses.combined import CombinedLoss
from innerpo.models.forward import forward_pairs


class SFTUnpairedMethod(nn.Module):
    """Same loop interface as OutputMethod; the completions come back as `policy_chosen`."""

    cacheable_reference = False  # nothing to cache: sft never reads the reference

    def __init__(self, loss: CombinedLoss):
        super().__init__()
        self.loss = loss
        assert not self.loss.uses_reference

    def bind(self, model) -> None:
        """Nothing to attach to the model."""

    def loss_inputs(self, model, batch: UnpairedBatch) -> LossInputs:
        policy = forward_pairs(model, batch).chosen  # an UnpairedBatch's rows all come back as `chosen`
        return LossInputs(policy, policy)  # sft reads the chosen side only

    def after_backward(self, model) -> dict[str, float]:
        return {}


def check_sft_rows(examples) -> None:
    """SFT imitates: every row must be desirable (label true)."""
    bad = next((i for i, ex in enumerate(examples) if not ex.label), None)
    if bad is not None:
        raise DataError(
            f"training row {bad} has label false: SFT imitates completions and trains on desirable (label true) rows only"
        )
