"""A weighted sum of loss components, as one loss."""

from __future__ import annotations

from torch import nn

from innerpo.losses.base import LossInputs, LossOutput, PreferenceLoss


class CombinedLoss(PreferenceLoss):
    """L = Σ_k w_k · L_k over named components.

    Metrics keep their own names (TRL's `rewards/*`, `logps/*`, `hidden/*`, ...); when
    a later component reports a name an earlier one already did, the later one is
    logged as `<name>/<metric>`. With more than one component, each one's loss is
    logged as `<name>/loss`.
    """

    def __init__(self, components: dict[str, PreferenceLoss], weights: list[float]):
        super().__init__()
        if not components:
            raise ValueError("a method needs at least one loss")
        if len(weights) != len(components):
            raise ValueError(
                f"got {len(components)} losses ({', '.join(components)}) but {len(weights)} weights; "
                "give one --method.weights value per loss"
            )
        self.components = nn.ModuleDict(components)
        self.weights = list(weights)

    @property
    def uses_reference(self) -> bool:
        return any(c.needs_reference for c in self.components.values())

    @property
    def uses_hidden(self) -> bool:
        return any(c.needs_hidden for c in self.components.values())

    @property
    def policy_stats(self) -> tuple[str, ...]:
        """Per-token statistics any component reads on the policy side (innerpo.models.forward.STATS)."""
        return tuple(sorted({s for c in self.components.values() for s in c.policy_stats}))

    @property
    def reference_stats(self) -> tuple[str, ...]:
        """Per-token statistics any component reads on the reference side."""
        return tuple(sorted({s for c in self.components.values() for s in c.reference_stats}))

    def forward(self, x: LossInputs) -> LossOutput:
        total = 0.0
        metrics = {}
        several = len(self.components) > 1
        for (name, comp), w in zip(self.components.items(), self.weights):
            out = comp(x)
            total = total + w * out.loss
            for k, v in out.metrics.items():
                metrics[f"{name}/{k}" if k in metrics else k] = v
            if several:
                metrics[f"{name}/loss"] = out.loss.detach()
        return LossOutput(total, metrics)
