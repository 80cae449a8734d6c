"""The method's settings: which objective to train, and its hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class MethodConfig:
    """Which objective to train, and its hyperparameters. Presets (`innerpo train NAME`) fill these."""

    losses: list[str] = field(default_factory=lambda: ["dpo"])
    """Loss components, summed with `weights` (e.g. `--method.losses dpo sft`)."""
    weights: list[float] = field(default_factory=lambda: [1.0])
    """One weight per loss."""
    beta: float = 0.1
    """Temperature of the implicit reward (DPO family)."""
    label_smoothing: float = 0.0
    """Probability that a preference label is flipped (cDPO); in [0, 0.5)."""
    ipo_normalize: bool = True
    """IPO on per-token mean log-ratios (TRL's convention); False uses summed log-ratios as in the IPO paper's equation."""
    discopop_tau: float = 0.05
    """DiscoPOP temperature of the logistic/exponential blend; > 0 (paper and TRL: 0.05)."""
    aot_unpaired: bool = False
    """AOT: sort chosen and rejected log-ratios separately (TRL `aot_unpaired`) instead of paired log-ratio differences."""
    simpo_gamma: float = 0.5
    """SimPO target margin γ >= 0 in reward units (TRL convention: loss = -log σ(β·Δmean − γ)); ignored when simpo_gamma_beta_ratio is set."""
    simpo_gamma_beta_ratio: float | None = None
    """SimPO margin given as γ/β (the SimPO paper's code, typically 0.3–1.0); when set, γ = ratio·β and simpo_gamma is ignored."""
    cpo_alpha: float = 1.0
    """CPO weight >= 0 of the NLL term on chosen completions (TRL default 1.0)."""
    kto_desirable_weight: float = 1.0
    """KTO weight λ_D > 0 of desirable (chosen / label=True) examples."""
    kto_undesirable_weight: float = 1.0
    """KTO weight λ_U > 0 of undesirable (rejected / label=False) examples."""
    kto_kl_estimate: Literal["mismatched", "batch"] = "mismatched"
    """KTO reference point z0: `mismatched` (TRL) reads KL log-probs of mismatched prompt/completion pairs from LossInputs.extra; `batch` uses the batch-mean log-ratio clamped at 0."""
    # --- gradient projection (projgrad / projbp, innerpo.methods.projection) ---
    projection: Literal["none", "projgrad", "projbp"] = "none"
    """Project gradients onto each LoRA module's reference chosen-minus-rejected direction: `projgrad` edits lora_B weight gradients after backward, `projbp` edits module output gradients during backprop; `none` is plain training."""
    orth_scale: float = 0.5
    """Projection: multiplier in [0, 1] of the update's part orthogonal to the preference direction (1 only drops the backward parallel part, 0 keeps motion along the direction alone)."""
    proj_clip: float | None = None
    """Projection: cap each projected gradient vector's norm at this multiple of the RMS norm of the original vectors in the same call (lora_B columns; completion tokens); None: off."""
    # --- hidden-state methods (InnerPO) ---
    hidden_loss: Literal["none", "innerpo", "prefvec", "mse", "reroute", "rank"] = "none"
    """Hidden-state term added to the output-level losses with weight `alpha`."""
    alpha: float = 1.0
    """Weight of the hidden-state term."""
    output_loss: str | None = None
    """Shorthand for hidden-state methods: use this one output-level loss (weight 1) instead of `losses`; `none` trains the hidden term alone."""
    collect: Literal["hs", "side"] = "hs"
    """Where states are read: `hs` the residual stream after each chosen block; `side` the inputs of its attention output and MLP down projections."""
    layers: str = "0.25,0.5,0.75"
    """Blocks to collect: indices, negative indices, fractions of depth, ranges (`4:12:2`, `0.25:0.75`), comma lists."""
    transform: Literal["none", "supr", "ether", "etherplus", "oft", "hra", "ortho"] = "none"
    """Map applied to all four pooled states before the hidden loss (trainable ones train with the adapter)."""
    align_method: str = "pars_rat"
    """InnerDPO margin (see innerpo.inner.align): pars_rat (s/‖d_ref‖ − 1, scale-free, 0 at the start), para_signed, para_signed_log, logodds, cosine_policy_margin, ..."""
    hidden_beta: float = 1.0
    """Scale of the hidden margin inside InnerDPO / rank losses."""
    trust_region: float | None = None
    """Clamp each sample's and layer's hidden margin at this value (None: off)."""
    trust_region_mode: Literal["upper", "both"] = "upper"
    """`upper`: one-sided clamp min(m, τ); `both`: clamp to [−τ, τ]."""
    token_constraint: float = 0.0
    """Weight of the penalty on the rejected side drifting further from the reference than the chosen side (token level; 0 = off)."""
    sink_threshold: float | None = None
    """Drop "attention sink" tokens whose norm exceeds this multiple of the row's median before pooling (None: keep all)."""
    supr_threshold: float | None = None
    """supr: keep coordinates whose rise between collected layers exceeds this, in hidden-state units; None: 0.1 × the RMS of that row's rise (scale free; ReprPO's fixed 0.1 suits only models whose states are O(1))."""
    allow_inert_transform: bool = False
    """Train an orthogonal transform (ether, oft, hra, ortho) with a loss that reads only inner products, which it provably cannot change (an ablation row identical to `none`)."""
    transform_lr_scale: float = 10.0
    """Trainable transforms (ether, etherplus, oft, hra): their parameters take steps this many times larger than the adapter's (a reparametrization, see innerpo.inner.transforms.scale_steps); at 1 they barely move in a short run."""
    hidden_loss_type: Literal["dpo", "ipo", "simper"] = "dpo"
    """Form of the InnerDPO term on its margin z: `dpo` −log σ(β·z), `ipo` (z − 1/(2β))², `simper` −symlog(z) (no β); rank reads dpo/ipo."""
    trust_region_scope: Literal["pair_layer", "pair", "batch"] = "pair_layer"
    """What the InnerDPO trust region clamps: each pair's margin at each layer, each pair's layer-averaged margin, or the batch mean of those."""
    stabilized_floor_mode: Literal["percentile", "mean_fraction"] = "percentile"
    """stabilized_ratio: floor the denominator at a percentile of the batch's reference separations (ReprPO's journal) or at a fraction of their mean."""
    stabilized_floor: float = 0.1
    """stabilized_ratio: the percentile as a fraction in (0, 1] (0.1 = 10th percentile) or the mean fraction φ."""
    logodds_smoothing: float = 0.1
    """logodds / odds: smoothing κ > 0 (c = κ·‖d_ref‖)."""
    prefvec_orth_weight: float = 0.0
    """PrefVec: weight of the sideways-movement penalty (ReprPO's use_orth_loss, off by default there)."""
    prefvec_angle_weight: float = 0.0
    """PrefVec: weight of the 1 − cos(d_π, d_ref) penalty (ReprPO's use_angle_loss, off by default there)."""
    retain_weight: float | None = None
    """mse / reroute: weight of the retain term (None: the loss's own default, 0.6 for mse as in ReprPO, 1.0 for reroute)."""
