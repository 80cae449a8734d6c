"""What the training loop puts in ``LossInputs.hidden`` for hidden-state losses.

Per collected layer (keyed by a layer name, e.g. ``"10"``), four states in a fixed order:
policy chosen, policy rejected, reference chosen, reference rejected. "Reference" means
the same model with the adapter disabled, computed under ``torch.no_grad()``.

Minimal fill (pooled only, enough for every loss except the InnerDPO token constraint
and the token-level rank variant)::

    HiddenInputs(pooled={"10": StateQuad(pc, pr, rc, rr)})   # each [B, D]

Full fill from token states (pools them for you, keeps the tokens)::

    HiddenInputs.from_tokens(
        tokens={"10": StateQuad(pc_t, pr_t, rc_t, rr_t)},  # [B, Tc, D], [B, Tr, D], [B, Tc, D], [B, Tr, D]
        chosen_mask=chosen_completion_mask,                 # [B, Tc], 1 on completion tokens
        rejected_mask=rejected_completion_mask,             # [B, Tr]
        sink_threshold=None,                                # or e.g. 10.0, see pooling.SINK_THRESHOLD
    )

Chosen and rejected sequences may have different lengths (Tc ≠ Tr); policy and
reference of the same side share a length and a mask. Plain 4-tuples work wherever a
:class:`StateQuad` is expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from torch import Tensor

from innerpo.inner.pooling import masked_mean


class StateQuad(NamedTuple):
    """Hidden states of one layer: [B, D] when pooled, [B, T, D] when token-level."""

    policy_chosen: Tensor
    policy_rejected: Tensor
    ref_chosen: Tensor
    ref_rejected: Tensor


@dataclass
class HiddenInputs:
    """Hidden states of one micro-batch, per collected layer.

    pooled: layer name → StateQuad of [B, D] states (masked means over completion tokens).
        Layer order is the dict's order; losses average over all layers given.
    tokens: optional, layer name → StateQuad of token-level states ([B, Tc, D] for the
        chosen side, [B, Tr, D] for the rejected side). Needed only by the InnerDPO token
        constraint and the token-level rank loss.
    chosen_mask, rejected_mask: [B, Tc], [B, Tr] completion masks, required with tokens.
    """

    pooled: dict[str, StateQuad]
    tokens: dict[str, StateQuad] | None = None
    chosen_mask: Tensor | None = None
    rejected_mask: Tensor | None = None

    def __post_init__(self):
        if not self.pooled:
            raise ValueError("HiddenInputs.pooled is empty: collect at least one layer")
        self.pooled = {k: StateQuad(*v) for k, v in self.pooled.items()}
        if self.tokens is not None:
            if self.chosen_mask is None or self.rejected_mask is None:
                raise ValueError("HiddenInputs: token-level states need chosen_mask and rejected_mask")
            self.tokens = {k: StateQuad(*v) for k, v in self.tokens.items()}
            missing = set(self.pooled) ^ set(self.tokens)
            if missing:
                raise ValueError(f"HiddenInputs: pooled and tokens have different layers: {sorted(missing)}")

    @property
    def layers(self) -> list[str]:
        return list(self.pooled)

    @classmethod
    def from_tokens(
        cls,
        tokens: dict[str, StateQuad | tuple[Tensor, Tensor, Tensor, Tensor]],
        chosen_mask: Tensor,
        rejected_mask: Tensor,
        sink_threshold: float | None = None,
    ) -> "HiddenInputs":
        """Pool token states with :func:`~innerpo.inner.pooling.masked_mean` and keep them."""
        pooled = {}
        for name, quad in tokens.items():
            pc, pr, rc, rr = quad
            pooled[name] = StateQuad(
                masked_mean(pc, chosen_mask, sink_threshold),
                masked_mean(pr, rejected_mask, sink_threshold),
                masked_mean(rc, chosen_mask, sink_threshold),
                masked_mean(rr, rejected_mask, sink_threshold),
            )
        return cls(pooled=pooled, tokens=dict(tokens), chosen_mask=chosen_mask, rejected_mask=rejected_mask)
