"""The contract between the training loop and every preference loss.

The loop computes, for each pair in a batch, the completion log-probabilities of the
policy (adapter on) and, when a loss asks for it, of the reference (adapter off). A loss
receives them as :class:`LossInputs` and returns a scalar loss plus detached metrics.
Losses never run the model themselves; that keeps each one a small, testable function
of tensors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from innerpo.params import NoParams, names


@dataclass
class SeqLogps:
    """Completion log-probabilities of a batch of sequences.

    sum:  [B] summed log-prob of the completion tokens (labels shifted by one).
    ntok: [B] number of completion tokens (float, >= 1 for valid rows).
    wpo:  [B] or None, summed per-token WPO log-weights log π(y_t) − log Σ_v π(v)²
          (no gradient); present when a loss asked for it (innerpo.losses.weighting).
    entropy: [B] or None, summed per-token entropies as shares of log V (no gradient);
          present on the reference side when a loss asked for it (Mallows weighting).
    """

    sum: Tensor
    ntok: Tensor
    wpo: Tensor | None = None
    entropy: Tensor | None = None

    @property
    def mean(self) -> Tensor:
        """[B] per-token mean log-prob of the completion."""
        return self.sum / self.ntok.clamp(min=1)

    def detach(self) -> "SeqLogps":
        return SeqLogps(
            self.sum.detach(),
            self.ntok.detach(),
            None if self.wpo is None else self.wpo.detach(),
            None if self.entropy is None else self.entropy.detach(),
        )


@dataclass
class LossInputs:
    """Everything a loss may read for one micro-batch of B preference pairs.

    ref_* are None when no loss in the method needs the reference model.
    hidden holds representation-level inputs for hidden-state losses (see
    innerpo.losses.inner); output-level losses ignore it.
    """

    policy_chosen: SeqLogps
    policy_rejected: SeqLogps
    ref_chosen: SeqLogps | None = None
    ref_rejected: SeqLogps | None = None
    hidden: Any = None
    extra: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class LossOutput:
    """loss: scalar tensor to minimise; metrics: name -> scalar tensor (detached)."""

    loss: Tensor
    metrics: dict[str, Tensor]


@dataclass
class Beta:
    beta: float = 0.1
    """Temperature of the implicit reward (DPO family)."""


@dataclass
class LabelSmoothing:
    label_smoothing: float = 0.0
    """Probability that a preference label is flipped (cDPO); in [0, 0.5)."""


class PreferenceLoss(nn.Module):
    """Base class of every loss component.

    Subclasses set ``needs_reference`` (False for reference-free objectives, so the loop
    skips the reference forward) and implement ``forward(x: LossInputs) -> LossOutput``.
    Subclassing nn.Module lets a loss own trainable parameters (hidden-state transforms)
    that the optimizer then trains with the adapter.

    Options: ``Params`` is the dataclass of the settings the loss reads (its fields are
    the `--method.<name>` flags, see innerpo.params); ``from_params`` builds the loss from
    one, ``reads`` says which of them a given setting actually reads. ``title`` is the
    one-line description `innerpo train --help` shows for the loss's preset, and
    ``preset`` the settings that preset fixes away from the declared defaults.
    """

    needs_reference: ClassVar[bool] = True
    needs_hidden: ClassVar[bool] = False
    # Per-token statistics (innerpo.models.forward.STATS) the loss reads, summed into the
    # policy's / the reference's SeqLogps; an instance sets them from its settings.
    policy_stats: tuple[str, ...] = ()
    reference_stats: tuple[str, ...] = ()
    Params: ClassVar[type] = NoParams
    title: ClassVar[str] = ""
    preset: ClassVar[dict] = {}

    @classmethod
    def from_params(cls, p, **fixed) -> "PreferenceLoss":
        """The loss configured by `p` (a ``Params``); `fixed` are settings a registry variant pins."""
        return cls(**dataclasses.asdict(p), **fixed)

    @classmethod
    def reads(cls, p) -> set[str]:
        """The options read under the settings `p`; all declared ones unless a subclass says otherwise."""
        return names(cls.Params)

    def forward(self, x: LossInputs) -> LossOutput:  # pragma: no cover - interface
        raise NotImplementedError


def reward_metrics(chosen_rewards: Tensor, rejected_rewards: Tensor, x: LossInputs) -> dict[str, Tensor]:
    """TRL-named metrics from implicit rewards ([B] each) and the policy log-probs.

    logps/* are summed completion log-probs, as in TRL.
    """
    margins = chosen_rewards - rejected_rewards
    return {
        "rewards/chosen": chosen_rewards.detach().mean(),
        "rewards/rejected": rejected_rewards.detach().mean(),
        "rewards/margins": margins.detach().mean(),
        "rewards/accuracies": (margins > 0).float().detach().mean(),
        "logps/chosen": x.policy_chosen.sum.detach().mean(),
        "logps/rejected": x.policy_rejected.sum.detach().mean(),
    }


def require_reference(x: LossInputs, name: str) -> tuple[SeqLogps, SeqLogps]:
    if x.ref_chosen is None or x.ref_rejected is None:
        raise ValueError(f"loss {name!r} needs reference log-probs, but none were computed")
    return x.ref_chosen, x.ref_rejected


def check_beta(beta: float, name: str) -> None:
    if not (beta > 0 and torch.isfinite(torch.tensor(beta))):
        raise ValueError(f"{name}: beta must be a positive finite number, got {beta}; try --method.beta=0.1")
