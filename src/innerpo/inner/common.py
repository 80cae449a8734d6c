"""Small helpers shared by the hidden-state losses, and the options several of them read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from innerpo.inner.hidden_inputs import HiddenInputs
from innerpo.inner.transforms import HiddenTransform, LayerTransforms, apply_transforms
from innerpo.losses.base import LossInputs, PreferenceLoss
from innerpo.params import option


def hidden_inputs(x: LossInputs, name: str, transform: LayerTransforms | HiddenTransform | None) -> HiddenInputs:
    """``x.hidden`` checked and mapped through the loss's transform."""
    h = x.hidden
    if not isinstance(h, HiddenInputs):
        raise ValueError(
            f"loss {name!r} needs hidden states: LossInputs.hidden must be an innerpo.inner.HiddenInputs "
            f"(got {type(h).__name__}); the loop fills it when a loss has needs_hidden = True"
        )
    return apply_transforms(transform, h)


@dataclass
class TrustRegion:
    trust_region: float | None = None
    """Clamp each sample's and layer's hidden margin at this value (None: off)."""


@dataclass
class NormOrder:
    norm_p: float = option(
        2.0,
        read_when="by innerpo with a norm-based align method, inner_policy_weights or token_constraint; by "
        "any hidden term with norm_before_reduce",
    )
    """Order p of the vector norms (ReprPO's InnerDPO `p`: 2 Euclidean, 1 Manhattan): InnerDPO's sizes n, |s|, o and
    token drifts, and the per-token normalisation of norm_before_reduce; the projection itself stays Euclidean
    (innerpo.inner.geometry)."""


@dataclass
class HiddenForm:
    hidden_beta: float = option(1.0, read_when="innerpo only with hidden_loss_type dpo or ipo")
    """Scale of the hidden margin inside InnerDPO / rank losses."""
    hidden_loss_type: Literal["dpo", "ipo", "simper"] = "dpo"
    """Form of the InnerDPO term on its margin z: `dpo` −log σ(β·z), `ipo` (z − 1/(2β))², `simper` −symlog(z) (no β); rank reads dpo/ipo."""  # noqa: E501


@dataclass
class RetainWeight:
    retain_weight: float | None = None
    """mse / reroute: weight of the retain term (None: the loss's own default, 0.6 for mse as in ReprPO, 1.0 for reroute)."""  # noqa: E501


class HiddenLoss(PreferenceLoss):
    """A hidden-state term: reads ``LossInputs.hidden`` (and the reference states in it).

    Besides its options (``Params``), a hidden term tells the method layer three facts
    about a setting `p`, which decide what the method may refuse or must collect:
    ``rotation_invariant`` (reads the states only through inner products and Euclidean
    norms, so an orthogonal transform of all four cannot change it), ``stationary_at_init``
    (value and gradient 0 while policy = reference) and ``token_level`` (needs per-token
    states, not only pooled ones).
    """

    needs_reference = True
    needs_hidden = True

    @classmethod
    def rotation_invariant(cls, p) -> bool:
        return False

    @classmethod
    def stationary_at_init(cls, p) -> bool:
        return False

    @classmethod
    def token_level(cls, p) -> bool:
        return False
