"""Every method option set away from its preset's value must be read by the chosen method.

A flag the method ignores is worse than an error: the run looks like an ablation and is
not (`innerpo train prefvec --method.align_method=pars_rat_log` trains plain PrefVec).
Each loss and each method layer declares here the MethodConfig fields it reads; the
declarations depend on other settings where reading does (`trust_region_mode` only
matters with a `trust_region`). :func:`check_options_read` compares the config with the
preset it came from (presets set fields away from the dataclass defaults themselves;
those are not the user's doing) and raises :class:`~innerpo.config.ConfigError` naming
each unread option and the methods that do read it.

Adding a MethodConfig field: add it to the declaration of whatever reads it (a test
fails until every field is declared somewhere).
"""

from __future__ import annotations

import dataclasses

from innerpo.errors import ConfigError
from innerpo.methods.config import MethodConfig

#: Output-level losses (innerpo.losses.registry) → the MethodConfig fields they read.
OUTPUT_READS: dict[str, frozenset[str]] = {
    "dpo": frozenset({"beta", "label_smoothing"}),
    "ipo": frozenset({"beta", "ipo_normalize"}),
    "hinge": frozenset({"beta"}),
    "robust": frozenset({"beta", "label_smoothing"}),
    "nca": frozenset({"beta"}),
    "bco": frozenset({"beta"}),
    "sppo": frozenset({"beta"}),
    "apo-zero": frozenset({"beta"}),
    "apo-down": frozenset({"beta"}),
    "exo": frozenset({"beta", "label_smoothing"}),
    "discopop": frozenset({"beta", "discopop_tau"}),
    "aot": frozenset({"beta", "label_smoothing", "aot_unpaired"}),
    "aot-unpaired": frozenset({"beta", "label_smoothing"}),
    "dpo-norm": frozenset({"beta"}),
    "simper": frozenset(),
    "simpo": frozenset({"beta", "simpo_gamma", "simpo_gamma_beta_ratio", "label_smoothing"}),
    "cpo": frozenset({"beta", "label_smoothing", "cpo_alpha"}),
    "orpo": frozenset({"beta"}),
    "kto": frozenset({"beta", "kto_desirable_weight", "kto_undesirable_weight", "kto_kl_estimate"}),
    "sft": frozenset(),
}

TRUST_REGION_DETAIL = frozenset({"trust_region_mode", "trust_region_scope"})
ALIGN_SETTINGS = {"logodds": {"logodds_smoothing"}, "odds": {"logodds_smoothing"},
                  "stabilized_ratio": {"stabilized_floor", "stabilized_floor_mode"}}

#: Hidden-state losses → every field they can read (what they read for a given config: :func:`hidden_term_reads`).
HIDDEN_READS: dict[str, frozenset[str]] = {
    "innerpo": frozenset({"align_method", "hidden_beta", "hidden_loss_type", "trust_region", "token_constraint"})
    | TRUST_REGION_DETAIL | frozenset().union(*ALIGN_SETTINGS.values()),
    "prefvec": frozenset({"trust_region", "prefvec_orth_weight", "prefvec_angle_weight"}),
    "mse": frozenset({"retain_weight"}),
    "reroute": frozenset({"retain_weight"}),
    "rank": frozenset({"hidden_beta", "hidden_loss_type"}),
}

#: What every method reads to decide what it is.
ALWAYS_READ = frozenset({"losses", "weights", "output_loss", "hidden_loss", "projection"})
#: The hidden-state method layer (methods.hidden): collection, pooling, transform, weight.
HIDDEN_METHOD_READS = frozenset({"alpha", "collect", "layers", "transform", "sink_threshold", "supr_threshold",
                                 "allow_inert_transform", "transform_lr_scale"})
#: Gradient projection (methods.projection).
PROJECTION_READS = frozenset({"orth_scale", "proj_clip"})


def hidden_term_reads(cfg: MethodConfig) -> set[str]:
    """Fields the configured hidden term reads."""
    reads = set(HIDDEN_READS.get(cfg.hidden_loss, ()))
    if cfg.hidden_loss == "innerpo":
        reads -= TRUST_REGION_DETAIL | frozenset().union(*ALIGN_SETTINGS.values())
        reads |= ALIGN_SETTINGS.get(cfg.align_method, set())
        if cfg.trust_region is not None:
            reads |= TRUST_REGION_DETAIL
        if cfg.hidden_loss_type == "simper":
            reads.discard("hidden_beta")  # SimPER has no β
    return reads


def method_reads(cfg: MethodConfig) -> set[str]:
    """Every MethodConfig field the method configured by `cfg` reads."""
    from innerpo.losses.registry import method_terms
    from innerpo.methods.hidden import TRAINABLE, inert_transform_reason

    reads = set(ALWAYS_READ)
    if cfg.output_loss is not None:
        reads -= {"losses", "weights"}
    for name, _ in method_terms(cfg):
        reads |= OUTPUT_READS.get(name, set())
    if cfg.projection != "none":
        reads |= PROJECTION_READS
    if cfg.hidden_loss != "none":
        reads |= hidden_term_reads(cfg) | HIDDEN_METHOD_READS
        if cfg.transform != "supr":
            reads.discard("supr_threshold")
        if cfg.transform not in TRAINABLE or cfg.transform == "ortho":  # ortho keeps its own parametrization
            reads.discard("transform_lr_scale")
        if inert_transform_reason(cfg) is None:
            reads.discard("allow_inert_transform")
    return reads


READ_CONDITIONS = {
    "trust_region_mode": "with --method.trust_region set",
    "trust_region_scope": "with --method.trust_region set",
    "logodds_smoothing": "with align_method logodds or odds",
    "stabilized_floor": "with align_method stabilized_ratio",
    "stabilized_floor_mode": "with align_method stabilized_ratio",
    "supr_threshold": "with transform supr",
    "transform_lr_scale": "with transform ether, etherplus, oft or hra",
    "allow_inert_transform": "with an orthogonal transform and a loss it cannot change",
    "hidden_beta": "innerpo only with hidden_loss_type dpo or ipo",
    "losses": "when --method.output_loss is unset",
    "weights": "when --method.output_loss is unset",
}


def readers(field: str) -> str:
    """Who reads `field`, and when, for the error message."""
    who = [name for name, fields in {**OUTPUT_READS, **HIDDEN_READS}.items() if field in fields]
    if field in HIDDEN_METHOD_READS:
        who.append("every hidden-state method (--method.hidden_loss)")
    if field in PROJECTION_READS:
        who.append("projgrad, projbp")
    text = ", ".join(who) or "every method"
    return f"{text} ({READ_CONDITIONS[field]})" if field in READ_CONDITIONS else text


def all_declared() -> frozenset[str]:
    return ALWAYS_READ | HIDDEN_METHOD_READS | PROJECTION_READS | frozenset().union(*OUTPUT_READS.values(), *HIDDEN_READS.values())


def check_options_read(cfg: MethodConfig, baseline: MethodConfig | None = None) -> None:
    """Raise ConfigError for every field set away from `baseline` (the preset's config;
    default: MethodConfig()) that the configured method does not read."""
    from innerpo.losses.registry import method_terms

    baseline = baseline or MethodConfig()
    known = all_declared()
    reads = method_reads(cfg)
    unread = [
        f.name for f in dataclasses.fields(MethodConfig)
        if f.name in known and f.name not in reads and getattr(cfg, f.name) != getattr(baseline, f.name)
    ]
    if not unread:
        return
    terms = " + ".join(name for name, _ in method_terms(cfg)) or "none"
    if cfg.projection != "none":
        terms += f" with {cfg.projection}"
    lines = [
        f"--method.{name}={getattr(cfg, name)!r} is set, but the chosen method ({terms}) does not read it; "
        f"it is read by: {readers(name)}"
        for name in unread
    ]
    raise ConfigError("\n".join(lines) + "\nRemove the option(s), or choose a method that reads them.")
