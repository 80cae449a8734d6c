"""The method's options (`--method.<name>`, YAML `method:`), assembled from declarations.

``MethodConfig`` is not written by hand: it is one dataclass inheriting the ``Params`` of
every registered loss (innerpo.methods.registry), the hidden-state method layer's and the
projection's, plus :class:`MethodStructure` (which components make up the method). So an
option lives next to the code that reads it, and a new loss's options appear here, in
`innerpo train --help` and in YAML files with no edit to this module.

Two components may read one option only by sharing its declaration (``Beta`` in
innerpo.losses.base, ``TrustRegion`` in innerpo.inner.common, ...);
:func:`method_config_class` refuses two separate declarations of one name.
"""

import dataclasses
from dataclasses import dataclass
from typing import Literal

from innerpo.methods.hidden import HiddenParams
from innerpo.methods.projection import ProjectionParams
from innerpo.methods.registry import LOSSES, PROJECTIONS, entry, hidden_losses
from innerpo.params import NoParams, option

_OUTPUT_LOSS_UNSET = "when --method.output_loss is unset"


@dataclass
class MethodStructure:
    """Which components make up the method."""

    losses: list[str] = option(factory=lambda: ["dpo"], read_when=_OUTPUT_LOSS_UNSET)
    """Loss components, summed with `weights` (e.g. `--method.losses dpo sft`)."""
    weights: list[float] = option(factory=lambda: [1.0], read_when=_OUTPUT_LOSS_UNSET)
    """One weight per loss."""
    output_loss: str | None = None
    """Shorthand for hidden-state methods: use this one output-level loss (weight 1) instead of `losses`; `none` trains the hidden term alone."""
    hidden_loss: Literal[("none", *hidden_losses())] = "none"  # noqa: F821 (choices from the registry)
    """Hidden-state term added to the output-level losses with weight `alpha`."""
    projection: Literal[("none", *PROJECTIONS)] = "none"  # noqa: F821
    """Project gradients onto each LoRA module's reference chosen-minus-rejected direction: `projgrad` edits lora_B weight gradients after backward, `projbp` edits module output gradients during backprop; `none` is plain training."""


def params_classes(registry: dict) -> list[type]:
    """The distinct Params dataclasses of `registry`'s entries, the method layers' and the
    structure, most derived first (a class that another one extends is reached through it)."""
    found: list[type] = []
    for name in registry:
        cls = entry(name, registry).cls.Params
        if cls is not NoParams and cls not in found:
            found.append(cls)
    found += [HiddenParams, ProjectionParams]
    found = [c for c in found if not any(c is not d and issubclass(d, c) for d in found)]
    # Dataclass fields follow the reversed MRO: the structure first, then the losses in registry order.
    return [*reversed(found), MethodStructure]


def check_declarations(classes: list[type]) -> None:
    """Each option name is declared by one dataclass (shared ones through a common base)."""
    owners: dict[str, type] = {}
    for base in {c for cls in classes for c in cls.__mro__ if dataclasses.is_dataclass(c)}:
        for name in base.__dict__.get("__annotations__", {}):
            if name in owners and owners[name] is not base:
                raise TypeError(
                    f"option {name!r} is declared by both {owners[name].__qualname__} and {base.__qualname__}; "
                    "components that read one option share one declaration (a small dataclass both inherit)"
                )
            owners[name] = base


def method_config_class(registry: dict = LOSSES) -> type:
    """The MethodConfig dataclass for `registry`: every declared option, one field each."""
    bases = params_classes(registry)
    check_declarations(bases)
    namespace = {
        "__doc__": "Which objective to train, and its hyperparameters. Presets (`innerpo train NAME`) fill these.",
        "__module__": __name__,
        "__qualname__": "MethodConfig",
    }
    return dataclass(type("MethodConfig", tuple(bases), namespace))


MethodConfig = method_config_class()
