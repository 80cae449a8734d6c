"""Named presets for `innerpo train NAME`: a description and the method settings they fix.

Each output-level loss in the registry (innerpo.methods.registry) is a preset of its own
name: that one loss, its ``title`` as the description, and the settings its ``preset``
fixes away from the declared defaults (β = 0.1, no label smoothing), each from its paper
or TRL 1.16; any of them can be overridden with --method.* flags or --config. A preset
fixes only what differs from the defaults, so a loss switched in by flag
(`innerpo train dpo --method.losses dpo sft --method.weights 1.0 0.2`) reads the same
shared settings. The hidden-state and projection presets come from
innerpo.methods.inner_presets.

Choices that differ from the defaults (declared by the losses themselves):
- exo: label smoothing ε = 1e-3 (EXO takes log ε; the paper's value).
- robust: ε = 0.1, the assumed label-flip rate (at ε = 0 robust DPO is plain DPO).
- simpo: β = 2.0 and γ = 1.0 (γ/β = 0.5), in the paper's recommended range
  (β 2–2.5, γ/β 0.3–0.8); the shared β = 0.1 is far too weak for per-token mean
  log-probs.
- discopop: β = 0.05, τ = 0.05 (the paper's setting).
- dpo-norm: β = 1.0 — it compares per-token mean log-ratios, about 1/length the size
  of DPO's summed ones, so DPO's β = 0.1 would leave it almost flat.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from innerpo.errors import ConfigError
from innerpo.methods.config import MethodConfig
from innerpo.methods.inner_presets import INNER_PRESETS, SOURCE_LOSS, SOURCE_TRANSFORM, inner_aliases
from innerpo.methods.registry import entry, output_losses


@dataclass(frozen=True)
class Preset:
    description: str
    method: dict = field(default_factory=dict)  # MethodConfig field overrides


def _output_preset(name: str) -> Preset:
    e = entry(name)
    return Preset(e.title, {"losses": [name], "weights": [1.0], **e.cls.preset})


PRESETS: dict[str, Preset] = {name: _output_preset(name) for name in output_losses()}
PRESETS.update({name: Preset(text, settings) for name, (text, settings) in INNER_PRESETS.items()})


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-")


# Normalized name → (canonical preset, listed in --help). Canonical names match too, in any case.
_ALIASES: dict[str, tuple[str, bool]] = {**inner_aliases(), **{_normalize(n): (n, False) for n in PRESETS}}


def resolve_method_name(name: str) -> str:
    """The canonical preset for `name`: a preset or an alias, case-insensitive, `_` and `-` alike."""
    try:
        return _ALIASES[_normalize(name)][0]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(_normalize(name), list(_ALIASES), n=3)
        hint = f"; did you mean {', '.join(_ALIASES[c][0] for c in close)}?" if close else ""
        raise ConfigError(f"unknown method {name!r}{hint} (`innerpo train --help` lists them)") from None


def aliases(canonical: str) -> list[str]:
    """The names listed beside `canonical` in --help (the research code's spellings)."""
    out = []
    for alias, (target, shown) in _ALIASES.items():
        if target == canonical and shown and alias != canonical:
            parts = alias.split("-")
            if len(parts) == 3 and parts[0] == "hs":  # show the source's capitalisation
                t = next((v for v in SOURCE_TRANSFORM.values() if v.lower() == parts[1]), parts[1])
                l = next((v for v in SOURCE_LOSS.values() if v.lower() == parts[2]), parts[2])
                alias = f"hs-{t}-{l}"
            out.append(alias)
    return out


def preset_method(name: str) -> MethodConfig:
    """The method settings of preset `name` (a preset or an alias)."""
    return dataclasses.replace(MethodConfig(), **PRESETS[resolve_method_name(name)].method)
