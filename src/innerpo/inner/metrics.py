"""Detached diagnostics of hidden-state geometry, shared by the hidden losses.

All values are batch means of per-pair quantities, averaged over layers:

- ``hidden/para``: s = d_π·u;  ``hidden/orth``: o = ‖d_π − s·u‖;  ``hidden/ref_norm``: n = ‖d_ref‖
- ``hidden/para_ratio``: s/n (1 at initialisation)
- ``hidden/agree``: fraction of pairs with s > 0 (policy difference on the reference's side)
- ``hidden/cos/chosen``, ``hidden/cos/rejected``: cos(h_pc, h_rc), cos(h_pr, h_rr), how far
  each policy state has turned away from the reference's (1 at initialisation)
- ``hidden/cos/pref``: cos(d_π, d_ref)
- ``hidden/para/<layer>``: s per layer (batch mean), when layers are named
"""

from __future__ import annotations

import torch
from torch import Tensor

from innerpo.inner.geometry import decompose, safe_cosine, upcast
from innerpo.inner.hidden_inputs import StateQuad


def geometry_metrics(quads: dict[str, StateQuad] | list[StateQuad]) -> dict[str, Tensor]:
    named = quads if isinstance(quads, dict) else dict(enumerate(quads))
    acc: dict[str, list[Tensor]] = {}
    per_layer: dict[str, Tensor] = {}
    with torch.no_grad():
        for layer, q in named.items():
            h_pc, h_pr, h_rc, h_rr = (upcast(h.detach()) for h in q)
            g = decompose(h_pc, h_pr, h_rc, h_rr)
            vals = {
                "hidden/para": g.para.mean(),
                "hidden/orth": g.orth_norm.mean(),
                "hidden/ref_norm": g.ref_norm.mean(),
                "hidden/para_ratio": (g.para / g.ref_norm).mean(),
                "hidden/agree": (g.para > 0).float().mean(),
                "hidden/cos/chosen": safe_cosine(h_pc, h_rc).mean(),
                "hidden/cos/rejected": safe_cosine(h_pr, h_rr).mean(),
                "hidden/cos/pref": safe_cosine(g.d_pi, g.d_ref).mean(),
            }
            for k, v in vals.items():
                acc.setdefault(k, []).append(v)
            if isinstance(quads, dict):
                per_layer[f"hidden/para/{layer}"] = vals["hidden/para"]
    return {**{k: torch.stack(v).mean() for k, v in acc.items()}, **per_layer}
