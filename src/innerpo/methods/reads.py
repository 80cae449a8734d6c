"""Every method option set away from its preset's value must be read by the chosen method.

A flag the method ignores is worse than an error: the run looks like an ablation and is
not (`innerpo train prefvec --method.align_method=pars_rat_log` trains plain PrefVec).
What a method reads follows from the declarations of its components (each loss's
``Params`` and ``reads``, the hidden-state layer's, the projection's; innerpo.params);
:func:`check_options_read` compares the config with the preset it came from (presets set
fields away from the declared defaults themselves; those are not the user's doing) and
raises :class:`~innerpo.errors.ConfigError` naming each unread option and who reads it.
"""

from __future__ import annotations

import dataclasses

from innerpo.errors import ConfigError
from innerpo.methods.config import MethodStructure
from innerpo.methods.hidden import HiddenParams, hidden_reads
from innerpo.methods.projection import ProjectionParams
from innerpo.methods.registry import LOSSES, entry
from innerpo.methods.terms import inert_reason, method_terms
from innerpo.params import names, read_when, take


def method_reads(cfg) -> set[str]:
    """Every option the method configured by `cfg` reads."""
    reads = names(MethodStructure)
    if cfg.output_loss is not None:
        reads -= {"losses", "weights"}
    for name, _ in method_terms(cfg):
        reads |= entry(name).reads(cfg)
    if cfg.projection != "none":
        reads |= names(ProjectionParams)
    if cfg.hidden_loss != "none":
        reads |= hidden_reads(take(HiddenParams, cfg), inert=inert_reason(cfg) is not None)
    return reads


def readers(option: str, registry: dict = LOSSES) -> str:
    """Who reads `option`, and when, for the error message."""
    who = [
        name
        for name in registry
        if option in names(entry(name, registry).cls.Params) and option not in entry(name, registry).pinned
    ]
    owners = [entry(name, registry).cls.Params for name in who]
    if option in names(HiddenParams):
        who.append("every hidden-state method (--method.hidden_loss)")
        owners.append(HiddenParams)
    if option in names(ProjectionParams):
        who.append("projgrad, projbp")
        owners.append(ProjectionParams)
    if option in names(MethodStructure):
        owners.append(MethodStructure)
    text = ", ".join(who) or "every method"
    when = next((w for w in (read_when(o, option) for o in owners) if w), None)
    return f"{text} ({when})" if when else text


def check_options_read(cfg, baseline=None) -> None:
    """Raise ConfigError for every option set away from `baseline` (the preset's config;
    default: the declared defaults) that the configured method does not read."""
    baseline = baseline or type(cfg)()
    reads = method_reads(cfg)
    unread = [
        f.name
        for f in dataclasses.fields(cfg)
        if f.name not in reads and getattr(cfg, f.name) != getattr(baseline, f.name)
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
