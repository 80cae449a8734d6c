"""Every loss component by name: the one registry.

Adding a loss: its module (the loss class with its docstring, ``Params``, ``title`` and,
where its paper's defaults differ from the declared ones, ``preset``), one line here,
and its tests. Everything else derives from these entries: the method's options and
flags (innerpo.methods.config), the refusal of options the chosen method does not read
(innerpo.methods.reads), the preset `innerpo train NAME` (innerpo.methods.presets) and
the build (innerpo.methods.build).

Output-level losses go in `--method.losses`; hidden-state terms (``needs_hidden``) in
`--method.hidden_loss`, and their method layer collects the states they read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from innerpo.inner.innerdpo import InnerDPOLoss
from innerpo.inner.mse import ReprPOMSELoss
from innerpo.inner.prefvec import PrefVecLoss
from innerpo.inner.rank import RankLoss
from innerpo.inner.reroute import RerouteRetainLoss
from innerpo.losses.aot import AOTLoss
from innerpo.losses.apo import APOLoss
from innerpo.losses.base import PreferenceLoss
from innerpo.losses.bco import BCOLoss
from innerpo.losses.cpo import CPOLoss
from innerpo.losses.discopop import DiscoPOPLoss
from innerpo.losses.dpo import DPOLoss
from innerpo.losses.dpo_norm import DPONormLoss
from innerpo.losses.exo import EXOLoss
from innerpo.losses.hinge import HingeLoss
from innerpo.losses.ipo import IPOLoss
from innerpo.losses.kto import KTOLoss
from innerpo.losses.nca import NCALoss
from innerpo.losses.orpo import ORPOLoss
from innerpo.losses.robust import RobustDPOLoss
from innerpo.losses.sft import SFTLoss
from innerpo.losses.simper import SimPERLoss
from innerpo.losses.simpo import SimPOLoss
from innerpo.losses.sppo import SPPOLoss
from innerpo.methods.projection import ProjBPMethod, ProjGradMethod
from innerpo.params import take


@dataclass(frozen=True)
class Variant:
    """One loss class under another name with some settings pinned (`apo-zero` is APO in
    mode zero). A pinned setting that is one of the class's options is not the user's to
    set, so it is not read."""

    cls: type[PreferenceLoss]
    title: str
    pinned: dict = field(default_factory=dict)


LOSSES: dict[str, type[PreferenceLoss] | Variant] = {
    "dpo": DPOLoss,
    "ipo": IPOLoss,
    "hinge": HingeLoss,
    "robust": RobustDPOLoss,
    "nca": NCALoss,
    "bco": BCOLoss,
    "sppo": SPPOLoss,
    "apo-zero": Variant(
        APOLoss, "APO-zero, anchored: raise chosen, lower rejected likelihood, arXiv:2408.06266", {"mode": "zero"}
    ),
    "apo-down": Variant(APOLoss, "APO-down, anchored: lower both, rejected more, arXiv:2408.06266", {"mode": "down"}),
    "exo": EXOLoss,
    "discopop": DiscoPOPLoss,
    "aot": AOTLoss,
    "aot-unpaired": Variant(
        AOTLoss,
        "AOT unpaired variant (chosen and rejected sorted separately), arXiv:2406.05882",
        {"aot_unpaired": True},
    ),
    "dpo-norm": DPONormLoss,
    "simper": SimPERLoss,
    "simpo": SimPOLoss,
    "cpo": CPOLoss,
    "orpo": ORPOLoss,
    "kto": KTOLoss,
    "sft": SFTLoss,
    # hidden-state terms
    "innerpo": InnerDPOLoss,
    "prefvec": PrefVecLoss,
    "mse": ReprPOMSELoss,
    "reroute": RerouteRetainLoss,
    "rank": RankLoss,
}


#: Gradient projections (`--method.projection`): edit gradients of an output-level method.
PROJECTIONS = {"projgrad": ProjGradMethod, "projbp": ProjBPMethod}


@dataclass(frozen=True)
class Entry:
    """A registry entry resolved: the class, its title, the settings pinned by a variant."""

    name: str
    cls: type[PreferenceLoss]
    title: str
    pinned: dict

    def params(self, values):
        """The class's Params read from `values` (a method config), with the pins applied."""
        p = take(self.cls.Params, values)
        own = {k: v for k, v in self.pinned.items() if hasattr(p, k)}
        return dataclasses.replace(p, **own) if own else p

    def reads(self, values) -> set[str]:
        return self.cls.reads(self.params(values)) - set(self.pinned)

    def build(self, values) -> PreferenceLoss:
        p = self.params(values)
        return self.cls.from_params(p, **{k: v for k, v in self.pinned.items() if not hasattr(p, k)})


def entry(name: str, registry: dict | None = None) -> Entry:
    """The entry called `name`; ValueError naming the known ones otherwise."""
    registry = LOSSES if registry is None else registry
    try:
        item = registry[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(sorted(registry))}") from None
    if isinstance(item, Variant):
        return Entry(name, item.cls, item.title, dict(item.pinned))
    return Entry(name, item, item.title, {})


def output_losses(registry: dict | None = None) -> list[str]:
    registry = LOSSES if registry is None else registry
    return [n for n in registry if not entry(n, registry).cls.needs_hidden]


def hidden_losses(registry: dict | None = None) -> list[str]:
    registry = LOSSES if registry is None else registry
    return [n for n in registry if entry(n, registry).cls.needs_hidden]
