"""A weighted sum of loss components, as one loss."""

from __future__ import annotations

from torch import nn

from innerpo.losses.base import LossInputs, LossOutput, PreferenceLoss


class CombinedLoss(PreferenceLoss):
    """L = Σ_k w_k · L_k over named components.

    Metrics: the first component's metrics keep their names (TRL's `rewards/*`,
    `logps/*`); every component's metrics are also logged under `<name>/<metric>`
    when there is more than one, together with `<name>/loss`.
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

    def forward(self, x: LossInputs) -> LossOutput:
        total = 0.0
        metrics = {}
        several = len(self.components) > 1
        for i, ((name, comp), w) in enumerate(zip(self.components.items(), self.weights)):
            out = comp(x)
            total = total + w * out.loss
            if i == 0:
                metrics.update(out.metrics)
            if several:
                metrics[f"{name}/loss"] = out.loss.detach()
                metrics.update({f"{name}/{k}": v for k, v in out.metrics.items()})
        return LossOutput(total, metrics)
