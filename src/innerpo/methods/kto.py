"""KTO's two method-side needs: the mismatched KL forwards, and training on unpaired data.

KL reference point (``kto_kl_estimate="mismatched"``, TRL's convention). KTO's z0 is
estimated from mismatched prompt/completion sequences: each prompt of the micro-batch
followed by the completion of the example before it (``roll_completions``). Their summed
completion log-probs are computed under the policy (adapter on, no gradient, the model
in its training mode — as TRL's KTOTrainer does) and under the reference (adapter off,
no gradient) every step; they cannot come from the on-disk reference table because the
mismatch depends on which examples share a batch. On paired data the chosen and the
rejected completions are rotated separately, so the mismatched set is the batch's own 2B
completions (TRL on paired data sees the same completions once it has unpaired them);
on unpaired data the B completions are rotated. Losses ask for these inputs with a
``needs_kl_inputs`` attribute (KTOLoss sets it for the mismatched estimate).

Unpaired data (prompt/completion/label rows): ``KTOUnpairedMethod`` — the loop switches
to it when the training source holds unpaired examples (innerpo.methods.build). Per
micro-batch (an UnpairedBatch of B completions) it runs the policy forward, the
reference forward (adapter off; no on-disk cache, ``cacheable_reference = False``) and,
for the mismatched estimate, the KL forwards, and its loss calls
``KTOLoss.forward_unpaired``. Only the ``kto`` loss trains on such data; anything else
is refused with a message, as is a training set without both labels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from innerpo.data.batching import UnpairedBatch, roll_completions
from innerpo.losses.base import LossOutput, SeqLogps
from innerpo.losses.kto import KL_POLICY_KEY, KL_REF_KEY, KTOLoss
from innerpo.models.forward import forward_pairs


def needs_kl_inputs(loss) -> bool:
    """Whether any component of a (combined) loss reads the mismatched KL log-probs."""
    components = loss.components.values() if hasattr(loss, "components") else [loss]
    return any(getattr(c, "needs_kl_inputs", False) for c in components)


def _seq_sums(out) -> Tensor:
    """All rows' summed log-probs of a forward_pairs result, in batch row order."""
    return torch.cat([out.chosen.sum, out.rejected.sum])


def mismatched_kl_logps(model, batch) -> dict[str, Tensor]:
    """{KL_POLICY_KEY, KL_REF_KEY}: summed log-probs [M] of the mismatched batch, no gradient.

    M = 2B for a PairBatch (rotated chosen, then rotated rejected), B for an UnpairedBatch.
    """
    if batch.num_pairs < 2:
        warnings.warn(
            "kto: a micro-batch of one example has no other completion to mismatch with, so its KL "
            "reference point uses its own completions; use --data.batch_size >= 2",
            stacklevel=2,
        )
    mismatched = roll_completions(batch)
    with torch.no_grad():
        policy = _seq_sums(forward_pairs(model, mismatched))
        with model.disable_adapter():
            ref = _seq_sums(forward_pairs(model, mismatched))
    return {KL_POLICY_KEY: policy.detach(), KL_REF_KEY: ref.detach()}


# --- unpaired data ----------------------------------------------------------------------


@dataclass
class UnpairedInputs:
    """What KTO reads for one micro-batch of B unpaired completions."""

    policy: SeqLogps  # [B]
    ref: SeqLogps  # [B]
    labels: Tensor  # [B] bool, True = desirable
    kl_policy: Tensor | None = None  # [B], mismatched estimate only
    kl_ref: Tensor | None = None


class UnpairedKTOObjective(nn.Module):
    """weight · KTOLoss.forward_unpaired, with the interface the loop reads (``uses_reference``)."""

    uses_reference = True
    uses_hidden = False

    def __init__(self, kto: KTOLoss, weight: float = 1.0):
        super().__init__()
        self.kto = kto
        self.weight = weight

    def forward(self, x: UnpairedInputs) -> LossOutput:
        out = self.kto.forward_unpaired(x.policy, x.ref, x.labels, x.kl_policy, x.kl_ref)
        return LossOutput(self.weight * out.loss, out.metrics)


class KTOUnpairedMethod(nn.Module):
    """KTO on prompt/completion/label data (same loop interface as OutputMethod)."""

    cacheable_reference = False  # the loop's reference table holds pairs; unpaired runs score the reference each step

    def __init__(self, kto: KTOLoss, weight: float = 1.0):
        super().__init__()
        self.loss = UnpairedKTOObjective(kto, weight)

    def bind(self, model) -> None:
        """Nothing to attach to the model."""

    def loss_inputs(self, model, batch: UnpairedBatch) -> UnpairedInputs:
        policy = forward_pairs(model, batch).chosen  # an UnpairedBatch's rows all come back as `chosen`
        with torch.no_grad(), model.disable_adapter():
            ref = forward_pairs(model, batch).chosen.detach()
        inputs = UnpairedInputs(policy, ref, batch.labels)
        if self.loss.kto.needs_kl_inputs:
            kl = mismatched_kl_logps(model, batch)
            inputs.kl_policy, inputs.kl_ref = kl[KL_POLICY_KEY], kl[KL_REF_KEY]
        return inputs

    def after_backward(self, model) -> dict[str, float]:
        return {}
