"""Presets of the hidden-state and gradient-projection methods, in the seeds' naming.

`<collect>-<transform>-<loss>`: collect in {hs, side}, transform in {none, supr, ether,
etherplus, oft, hra, ortho}, loss in {innerpo, prefvec, mse, rank}; `innerpo`, `prefvec`,
`mse` and `rank` alone mean `hs-none-<loss>`. Every hidden preset adds its term to DPO
(`--method.output_loss` changes that, `--method.alpha` weighs the hidden term).
"""

from __future__ import annotations

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
LOSSES = {
    "innerpo": "InnerDPO: DPO on the hidden margin along the reference preference direction",
    "prefvec": "PrefVec: move chosen/rejected states along the preference direction, orthogonal part small",
    "mse": "reroute/retain (circuit-breaker style) on log distances",
    "rank": "rank: DPO over hidden dimensions via log-softmax",
}


def _preset(collect: str, transform: str, loss: str) -> tuple[str, dict]:
    text = f"DPO + {LOSSES[loss]} ({COLLECT[collect]}{TRANSFORMS[transform]})"
    return (text, {"losses": ["dpo"], "weights": [1.0], "hidden_loss": loss, "collect": collect, "transform": transform})


# name → (description, MethodConfig overrides); methods.presets wraps them as Presets.
INNER_PRESETS: dict[str, tuple[str, dict]] = {loss: _preset("hs", "none", loss) for loss in LOSSES}
INNER_PRESETS.update(
    {f"{c}-{t}-{l}": _preset(c, t, l) for c in COLLECT for t in TRANSFORMS for l in LOSSES}
)
INNER_PRESETS["projgrad"] = (
    "DPO; LoRA-B gradient columns projected onto each module's reference chosen−rejected direction after backward",
    {"losses": ["dpo"], "weights": [1.0], "projection": "projgrad"},
)
INNER_PRESETS["projbp"] = (
    "DPO; each LoRA module's output gradient projected onto the reference preference direction during backprop",
    {"losses": ["dpo"], "weights": [1.0], "projection": "projbp"},
)
