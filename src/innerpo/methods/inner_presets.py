"""Presets of the hidden-state and gradient-projection methods, in the seeds' naming.

`<collect>-<transform>-<loss>`: collect in {hs, side}, transform in {none, supr, ether,
etherplus, oft, hra, ortho}, loss any hidden-state term of the registry (innerpo, prefvec,
mse, reroute, rank); `innerpo`,
`prefvec`, `mse`, `reroute` and `rank` alone mean `hs-none-<loss>`. Every hidden preset
adds its term to DPO (`--method.output_loss` changes that, `--method.alpha` weighs the
hidden term).

Names people type from the research code (wassname/repr-preference-optimization) are
accepted too, case-insensitive with `_` and `-` alike (:func:`inner_aliases`): its
experiment names `hs-<Transform>-<Loss>` with its spellings (`SupressedHS` for supr,
`InnerDPO`/`InDPO` for innerpo, `ReprPO` for hs: `ReprPO_ETHER_PrefVec`), the
simplified branch's `innerpo-<transform>` and the first README's `reprpo_<transform>`
(`reprpo_side` = side-none-prefvec).
"""

from __future__ import annotations

from innerpo.methods.registry import PROJECTIONS, entry, hidden_losses

COLLECT = {"hs": "residual stream after each block", "side": "inputs of o_proj and down_proj"}
TRANSFORMS = {
    "none": "",
    "supr": ", supr-masked (coordinates that rose between collected layers)",
    "ether": ", ETHER block reflections",
    "etherplus": ", ETHER+ transform",
    "oft": ", OFT block-orthogonal transform",
    "hra": ", Householder reflections (HRA)",
    "ortho": ", learned orthogonal map",
}
# The hidden-state terms of the registry, with their one-line titles.
LOSSES = {name: entry(name).title for name in hidden_losses()}
# The research code's spellings (for aliases and for `innerpo train --help`).
SOURCE_TRANSFORM = {
    "none": "None",
    "supr": "SupressedHS",
    "ether": "ETHER",
    "etherplus": "ETHERplus",
    "oft": "OFT",
    "hra": "HRA",
    "ortho": "Ortho",
}
SOURCE_LOSS = {"innerpo": "InnerDPO", "prefvec": "PrefVec", "mse": "mse", "rank": "rank"}
TRANSFORM_SYNONYMS = {
    "supr": ("supr", "supressedhs", "suppressedhs", "supressed", "suppressed"),
    "ortho": ("ortho", "orthogonal"),
}
LOSS_SYNONYMS = {"innerpo": ("innerpo", "innerdpo", "indpo")}
COLLECT_SYNONYMS = {"hs": ("hs", "reprpo"), "side": ("side",)}


def _preset(collect: str, transform: str, loss: str) -> tuple[str, dict]:
    text = f"DPO + {LOSSES[loss]} ({COLLECT[collect]}{TRANSFORMS[transform]})"
    return (
        text,
        {"losses": ["dpo"], "weights": [1.0], "hidden_loss": loss, "collect": collect, "transform": transform},
    )


# name → (description, MethodConfig overrides); methods.presets wraps them as Presets.
INNER_PRESETS: dict[str, tuple[str, dict]] = {loss: _preset("hs", "none", loss) for loss in LOSSES}
INNER_PRESETS.update({f"{c}-{t}-{l}": _preset(c, t, l) for c in COLLECT for t in TRANSFORMS for l in LOSSES})
INNER_PRESETS.update(
    {name: (cls.title, {"losses": ["dpo"], "weights": [1.0], "projection": name}) for name, cls in PROJECTIONS.items()}
)


def inner_aliases() -> dict[str, tuple[str, bool]]:
    """Normalized alias → (canonical preset, shown in --help) for the hidden-state presets."""
    out: dict[str, tuple[str, bool]] = {}
    for c in COLLECT:
        for t in TRANSFORMS:
            for l in LOSSES:
                canonical = f"{c}-{t}-{l}"
                for cs in COLLECT_SYNONYMS[c]:
                    for ts in TRANSFORM_SYNONYMS.get(t, (t,)):
                        for ls in LOSS_SYNONYMS.get(l, (l,)):
                            out.setdefault(f"{cs}-{ts}-{ls}", (canonical, False))
                if c == "hs" and l in SOURCE_LOSS:
                    out[f"hs-{SOURCE_TRANSFORM[t]}-{SOURCE_LOSS[l]}".lower()] = (canonical, True)
    for t in TRANSFORMS:
        out[f"innerpo-{t}"] = (f"hs-{t}-innerpo", True)  # the simplified branch's README
        out[f"reprpo-{t}"] = (f"hs-{t}-prefvec", True)  # the first README (reprpo_ortho, reprpo_hra)
    out["reprpo-side"] = ("side-none-prefvec", True)
    for syn in ("innerdpo", "indpo"):
        out[syn] = ("innerpo", False)
    return out
