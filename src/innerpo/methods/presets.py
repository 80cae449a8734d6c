"""Named presets for `innerpo train NAME`: a description and the method settings they fix.

Each preset trains one loss of innerpo.losses with per-loss defaults from its paper or
TRL 1.16; every other setting keeps MethodConfig's default (β = 0.1, no label
smoothing), and any of them can be overridden with --method.* flags or --config. A
preset fixes only what differs from those defaults, so a loss switched in by flag
(`innerpo train dpo --method.losses dpo sft --method.weights 1.0 0.2`) reads the same
shared settings.

Choices that differ from the defaults:
- exo: label smoothing ε = 1e-3 (EXO takes log ε; the paper's value).
- robust: ε = 0.1, the assumed label-flip rate (at ε = 0 robust DPO is plain DPO).
- simpo: β = 2.0 and γ = 1.0 (γ/β = 0.5), in the paper's recommended range
  (β 2–2.5, γ/β 0.3–0.8); the shared β = 0.1 is far too weak for per-token mean
  log-probs.
- discopop: β = 0.05, τ = 0.05 (the paper's setting).
- dpo-norm: β = 1.0 — it compares per-token mean log-ratios, about 1/length the size
  of DPO's summed ones, so DPO's β = 0.1 would leave it almost flat.
- kto: β = 0.1, λ_D = λ_U = 1 and TRL's mismatched KL estimate; trains on pairs or on
  prompt/completion/label data (told by the dataset's columns).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from innerpo.errors import ConfigError
from innerpo.methods.config import MethodConfig
from innerpo.methods.inner_presets import INNER_PRESETS, SOURCE_LOSS, SOURCE_TRANSFORM, inner_aliases
from innerpo.train.config import TrainConfig


@dataclass(frozen=True)
class Preset:
    description: str
    method: dict = field(default_factory=dict)  # MethodConfig field overrides


def _one(loss: str, **settings) -> dict:
    return {"losses": [loss], "weights": [1.0], **settings}


PRESETS: dict[str, Preset] = {
    "dpo": Preset("DPO with optional label smoothing (cDPO), arXiv:2305.18290", _one("dpo")),
    "ipo": Preset("IPO, squared loss on per-token log-ratio margins (TRL convention), arXiv:2310.12036", _one("ipo")),
    "hinge": Preset("SLiC-HF hinge loss on reference log-ratios, arXiv:2305.10425", _one("hinge")),
    "robust": Preset("Robust DPO for noisy labels (assumed flip rate ε=0.1), arXiv:2403.00409", _one("robust", label_smoothing=0.1)),
    "nca": Preset("NCA, noise-contrastive alignment on pairs, arXiv:2402.05369", _one("nca")),
    "bco": Preset("BCO, binary classifier optimization on pairs, arXiv:2404.04656", _one("bco")),
    "sppo": Preset("SPPO with hard win probabilities, arXiv:2405.00675", _one("sppo")),
    "apo-zero": Preset("APO-zero, anchored: raise chosen, lower rejected likelihood, arXiv:2408.06266", _one("apo-zero")),
    "apo-down": Preset("APO-down, anchored: lower both, rejected more, arXiv:2408.06266", _one("apo-down")),
    "exo": Preset("EXO, efficient exact optimization (pairs, ε=1e-3), arXiv:2402.00856", _one("exo", label_smoothing=1e-3)),
    "discopop": Preset("DiscoPOP, discovered log-ratio modulated loss (β=τ=0.05), arXiv:2406.08414", _one("discopop", beta=0.05, discopop_tau=0.05)),
    "aot": Preset("AOT, distributional alignment via optimal transport (paired), arXiv:2406.05882", _one("aot")),
    "aot-unpaired": Preset("AOT unpaired variant (chosen and rejected sorted separately), arXiv:2406.05882", _one("aot-unpaired")),
    "dpo-norm": Preset("Length-normalized DPO on per-token log-ratios (β=1.0), arXiv:2305.18290 + arXiv:2405.14734", _one("dpo-norm", beta=1.0)),
    "simper": Preset("SimPER, reference-free perplexity optimization, no hyperparameters, arXiv:2502.00883", _one("simper")),
    "simpo": Preset("SimPO, reference-free, length-normalized with margin (β=2, γ=1), arXiv:2405.14734", _one("simpo", beta=2.0, simpo_gamma=1.0)),
    "cpo": Preset("CPO, reference-free preference loss plus NLL on chosen, arXiv:2401.08417", _one("cpo", cpo_alpha=1.0)),
    "orpo": Preset("ORPO, odds-ratio preference term plus NLL, reference-free, arXiv:2403.07691", _one("orpo")),
    "kto": Preset("KTO, prospect-theoretic; pairs or prompt/completion/label data, arXiv:2402.01306", _one("kto", kto_kl_estimate="mismatched")),
    "sft": Preset("SFT, NLL of the chosen completions only (baseline; RPO's NLL term), arXiv:2404.19733", _one("sft")),
}

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


def preset_config(name: str) -> TrainConfig:
    name = resolve_method_name(name)
    method = dataclasses.replace(MethodConfig(), **PRESETS[name].method)
    return TrainConfig(method=method, method_name=name)
