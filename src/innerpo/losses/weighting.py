"""Per-pair weights of preference losses: WPO policy weighting and Mallows dispersion.

Both come from the research code (wassname/repr-preference-optimization, branch ``vast2``,
``reprpo/interventions/dpo_helpers.py``: ``compute_logprobs``, ``compute_policy_weights``,
``compute_mallows_weights``; applied in ``reprpo/interventions/dpo.py``,
``calc_dpo_loss_w_metrics`` / ``compute_dpo_loss``, and for InnerDPO in
``reprpo/interventions/losses/innerdpo.py``, ``innerdpo_loss``). The per-token
statistics they read are computed in the forward pass the loss runs anyway, without
gradient (innerpo.models.forward ``token_stats``: ``wpo`` on the policy side, ``entropy``
on the reference side, which the reference cache then stores too).

**WPO** (Zhou et al. 2024, "WPO: Enhancing RLHF with Weighted Preference Optimization",
arXiv:2406.11827, Eq. 2). A pair's loss is weighted by how likely the current policy is
to have produced it, so off-policy pairs count less. Per side, the length-normalised
log-weight (the paper's "aligned" per-token probability, π(y_t)/Σ_v π(v)², in logs):

    ℓ_side = (1/|y|) Σ_t [log π(y_t | x, y_<t) − log Σ_v π(v | x, y_<t)²]

and, per pair, ℓ = ℓ_chosen + ℓ_rejected. Two forms (``policy_weight_form``):

* ``sigmoid`` (default; the research code's ``compute_policy_weights``, whose comment says
  "Here we deviate from the WPO paper for stability"): w = σ(ℓ / T), T = 3, then
  normalised to mean 1 over the micro-batch, w ← w / (mean_B w + 1e-6);
* ``exp``: w = exp(ℓ) = exp(ℓ_chosen)·exp(ℓ_rejected), the paper's Eq. 2 with the
  length-normalised "aligned" probabilities, exactly TRL's ``use_weighting``
  (``DPOTrainer._compute_loss``, TRL 1.16; a test checks parity); not normalised.

The weight is a constant (no gradient) multiplying each pair's loss before the batch
mean. Departures from the research code: (1) the normalisation is over the micro-batch
each process sees (the research code trained one process without accumulation, so its
batch was the micro-batch); (2) the research code also computes these weights on the
reference pass, unused; innerpo computes them on the policy pass only.

**Mallows** (Chen et al. 2024, "Mallows-DPO: Fine-Tune Your LLM with Preference
Dispersions", arXiv:2405.14953; the research code follows RainbowPO's implementation,
CapitalOne-Research/RainbowPO ``trl/trainer/dpo_trainer.py``). The DPO logit of each pair
is scaled by a dispersion weight φ(x) from the *reference's* predictive entropy: prompts
on which the reference is uncertain (high entropy, dispersed preferences) get a smaller
φ, i.e. a softer loss. Per side, H̄_side = (1/|y|) Σ_t H_t / log V (the mean token
entropy as a share of its maximum, in (0, 1]), and

    φ = −c · log((H̄_chosen + H̄_rejected) / 2),      c = 0.29 (``mallows_dispersion_mean``)

so z ← φ·z inside DPO. The constant c is marked "TODO this should ideally be a moving
average?" in the research code: it stands in for the dispersion's mean over the data,
which the paper estimates rather than fixes. Departures: (1) the mean entropy is clamped
at 1e-6 before the log, so a reference that is certain of every token gives φ ≈ 4.0
instead of +∞; (2) the research code applies its Mallows factor whenever the reference's
stored per-row statistic is non-zero, which with ``use_policy_weights`` on and
``use_mallows`` off is the WPO log-weight (negative: the log gives NaN), and it logs the
policy weights under ``mallows_weights``; here the two options are independent and
``weights/mallows`` is the mean φ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from innerpo.losses.base import LossInputs, require_reference
from innerpo.losses.common import check_positive
from innerpo.params import option

_WPO = "with --method.use_policy_weights"
_MALLOWS = "with --method.use_mallows"

POLICY_WEIGHT_TEMPERATURE = 3.0
"""T of the research code's ``compute_policy_weights(pi_cho, pi_rej, T=3)``."""

MALLOWS_DISPERSION_MEAN = 0.29
"""c of the research code's ``compute_mallows_weights`` (``dispersion_mean = 0.29``, a TODO there)."""

MIN_ENTROPY_SHARE = 1e-6
"""Floor of the mean entropy share before its log (Mallows): φ ≤ 0.29·log(1e6) ≈ 4.0."""


@dataclass
class PolicyWeights:
    use_policy_weights: bool = False
    """WPO (arXiv:2406.11827, Eq. 2): weight each pair's loss by the policy's length-normalised probability of both completions, in the research code's stabilised form σ(ℓ/T) normalised to mean 1 over the batch (innerpo.losses.weighting)."""  # noqa: E501
    policy_weight_temperature: float = option(POLICY_WEIGHT_TEMPERATURE, read_when=_WPO)
    """WPO, form `sigmoid`: temperature T > 0 of σ(ℓ/T) (the research code's T = 3)."""
    policy_weight_form: Literal["sigmoid", "exp"] = option("sigmoid", read_when=_WPO)
    """WPO: `sigmoid` σ(ℓ/T) normalised to mean 1 (the research code); `exp` exp(ℓ), the paper's and TRL's `use_weighting` (not normalised)."""  # noqa: E501


@dataclass
class Mallows:
    use_mallows: bool = False
    """Mallows-DPO (arXiv:2405.14953, as in RainbowPO): scale each pair's DPO logit by φ = −c·log(mean reference entropy share), so prompts the reference is unsure of train softer."""  # noqa: E501
    mallows_dispersion_mean: float = option(MALLOWS_DISPERSION_MEAN, read_when=_MALLOWS)
    """Mallows: the constant c > 0 of φ = −c·log(H̄) (the research code's dispersion_mean 0.29, marked TODO there)."""


def policy_weight_reads(p: PolicyWeights) -> set[str]:
    return (
        {"use_policy_weights", "policy_weight_temperature", "policy_weight_form"}
        if p.use_policy_weights
        else {"use_policy_weights"}
    )


def mallows_reads(p: Mallows) -> set[str]:
    return {"use_mallows", "mallows_dispersion_mean"} if p.use_mallows else {"use_mallows"}


def check_policy_weights(p: PolicyWeights, name: str) -> None:
    check_positive(p.policy_weight_temperature, name, "policy_weight_temperature", "3.0")
    if p.policy_weight_form not in ("sigmoid", "exp"):
        raise ValueError(f"{name}: policy_weight_form must be 'sigmoid' or 'exp', got {p.policy_weight_form!r}")


def check_mallows(p: Mallows, name: str) -> None:
    check_positive(p.mallows_dispersion_mean, name, "mallows_dispersion_mean", "0.29")


def policy_log_weights(x: LossInputs, name: str) -> Tensor:
    """[B] ℓ = ℓ_chosen + ℓ_rejected, the per-pair WPO log-weight (no gradient)."""
    c, r = x.policy_chosen, x.policy_rejected
    if c.wpo is None or r.wpo is None:
        raise ValueError(
            f"{name}: use_policy_weights needs the policy's per-token WPO statistics (SeqLogps.wpo), but the "
            "method's forward did not compute them; this method cannot weight pairs by policy probability"
        )
    return (c.wpo / c.ntok.clamp(min=1) + r.wpo / r.ntok.clamp(min=1)).detach()


def policy_weights(
    x: LossInputs, temperature: float = POLICY_WEIGHT_TEMPERATURE, form: str = "sigmoid", name: str = "loss"
) -> Tensor:
    """[B] WPO weights of the pairs of `x` (module docstring); constants (no gradient)."""
    ell = policy_log_weights(x, name)
    if form == "exp":
        return torch.exp(ell)
    w = torch.sigmoid(ell / temperature)
    return w / (w.mean() + 1e-6)


def mallows_dispersion(x: LossInputs, dispersion_mean: float = MALLOWS_DISPERSION_MEAN, name: str = "loss") -> Tensor:
    """[B] φ = −c·log((H̄_chosen + H̄_rejected)/2) from the reference's entropies; no gradient."""
    ref_c, ref_r = require_reference(x, name)
    if ref_c.entropy is None or ref_r.entropy is None:
        raise ValueError(
            f"{name}: use_mallows needs the reference's per-token entropies (SeqLogps.entropy), but the method's "
            "reference pass did not compute them; this method cannot use Mallows weighting"
        )
    share = (ref_c.entropy / ref_c.ntok.clamp(min=1) + ref_r.entropy / ref_r.ntok.clamp(min=1)) / 2
    return (-dispersion_mean * torch.log(share.clamp(min=MIN_ENTROPY_SHARE))).detach()


def weight_metrics(
    policy: Tensor | None = None, mallows: Tensor | None = None, prefix: str = "weights"
) -> dict[str, Tensor]:
    """Logged means: `weights/policy` (the applied WPO weight), `weights/mallows` (φ)."""
    out = {}
    if policy is not None:
        out[f"{prefix}/policy"] = policy.detach().mean()
        out[f"{prefix}/policy_std"] = policy.detach().std(unbiased=False) if policy.numel() > 1 else torch.zeros(())
    if mallows is not None:
        out[f"{prefix}/mallows"] = mallows.detach().mean()
    return out
