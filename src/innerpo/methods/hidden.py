"""Hidden-state methods (InnerPO): collect, pool and transform states, then the loss.

Per micro-batch: the policy forward (the one the output loss needs) runs with capture
hooks at the chosen blocks; the reference states come from the same reference pass that
yields reference log-probs (or from the on-disk reference table, which then stores the
pooled reference states too). Nothing runs an extra forward.

Pipeline per collected point k (a block for `hs`, a block's o_proj/down_proj input for
`side`): states [2B, T, D] → masked mean over completion tokens (optional sink filter)
→ StateQuad(policy chosen, policy rejected, reference chosen, reference rejected), each
[B, D] → transform (`supr` keeps, per state, the coordinates that rose between
consecutive collected points, read at the last real completion token; `ether`, `hra`,
`ortho`, ... map the states with trainable parameters owned by this method) →
HiddenInputs for the hidden loss.

Note on orthogonal transforms (ether, oft, hra, ortho): InnerDPO, PrefVec and the
reroute/retain loss read states only through inner products and norms, which an
orthogonal map preserves, so with those losses these transforms change nothing and get
no gradient. They matter for `rank` (log-softmax over coordinates) and `etherplus`
(not orthogonal).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from innerpo.config import MethodConfig
from innerpo.data.batching import PairBatch
from innerpo.inner import HiddenInputs, StateQuad, head_projector, last_real_token, make_transform, masked_mean, parse_layers, supr
from innerpo.losses.base import LossInputs, SeqLogps
from innerpo.methods.base import OutputMethod
from innerpo.methods.kto import mismatched_kl_logps, needs_kl_inputs
from innerpo.models.capture import capture, capture_points, decoder_layers
from innerpo.models.forward import ForwardOutput, _body_and_head, forward_pairs

TRAINABLE = ("ether", "etherplus", "oft", "hra", "ortho")


class HiddenMethod(OutputMethod):
    """Output-level losses plus one hidden-state term, states collected in the same passes."""

    def __init__(self, cfg: MethodConfig):
        super().__init__(cfg)
        if not self.loss.uses_hidden:
            raise ValueError("HiddenMethod needs a hidden-state loss (--method.hidden_loss)")
        self.cfg = cfg
        self.token_level = cfg.token_constraint > 0
        # Token-level states cannot come from the compact reference table.
        self.cacheable_reference = not self.token_level
        self.points: dict[str, nn.Module] = {}
        self.layers: list[int] = []
        self.transforms = nn.ModuleDict()

    def bind(self, model) -> None:
        """Resolve layers and capture points on the loaded model; build transforms."""
        n = len(decoder_layers(model))
        self.layers = parse_layers(self.cfg.layers, n)
        self.points = capture_points(model, self.layers, self.cfg.collect)
        if self.cfg.transform == "supr":
            if len(self.layers) < 2:
                raise ValueError(f"transform supr compares consecutive collected layers: --method.layers={self.cfg.layers!r} gives only {self.layers}")
            _, head, config = _body_and_head(model)
            self.register_buffer("projector", head_projector(head.weight), persistent=False)
        elif self.cfg.transform in TRAINABLE:
            dims = {k: _input_dim(m) if self.cfg.collect == "side" else model.config.hidden_size for k, m in self.points.items()}
            self.transforms = nn.ModuleDict({_key(k): make_transform(self.cfg.transform, d) for k, d in dims.items()})

    def reference_settings(self) -> dict:
        return {"collect": self.cfg.collect, "layers": self.layers, "sink_threshold": self.cfg.sink_threshold, "supr": self.cfg.transform == "supr"}

    def _forward(self, model, batch: PairBatch) -> tuple[ForwardOutput, dict[str, Tensor]]:
        """Log-probs plus, per point, pooled [2B, D] (and last-token / token states when needed)."""
        with capture(self.points, self.cfg.collect) as store:
            out = forward_pairs(model, batch, observing_hooks=True)
        mask = out.completion_mask  # the layout of the captured states (last pass)
        rows = {}
        for k, states in store.items():
            rows[f"pooled/{k}"] = masked_mean(states, mask, self.cfg.sink_threshold)
            if self.cfg.transform == "supr":
                rows[f"last/{k}"] = last_real_token(states, mask)
            if self.token_level:
                rows[f"tokens/{k}"] = states
                rows["token_mask"] = mask
        return out, rows

    def reference_rows(self, model, batch: PairBatch) -> dict[str, Tensor]:
        out, rows = self._forward(model, batch)
        b = batch.num_pairs
        table = {"chosen_sum": out.chosen.sum, "chosen_ntok": out.chosen.ntok, "rejected_sum": out.rejected.sum, "rejected_ntok": out.rejected.ntok}
        # Store chosen and rejected side by side: [B, 2, ...], so rows index pairs.
        table.update({name: torch.stack([t[:b], t[b:]], dim=1) for name, t in rows.items()})
        return table

    def loss_inputs(self, model, batch: PairBatch) -> LossInputs:
        policy, rows = self._forward(model, batch)
        ref = self.reference(model, batch)
        b = batch.num_pairs
        inputs = LossInputs(policy.chosen, policy.rejected, SeqLogps(ref["chosen_sum"], ref["chosen_ntok"]), SeqLogps(ref["rejected_sum"], ref["rejected_ntok"]))
        if needs_kl_inputs(self.loss):  # KTO as the output loss: its mismatched KL reference point
            inputs.extra.update(mismatched_kl_logps(model, batch))

        def quad(prefix: str, k: str) -> StateQuad:
            p, r = rows[f"{prefix}/{k}"], ref[f"{prefix}/{k}"].to(rows[f"{prefix}/{k}"].dtype)
            return StateQuad(p[:b], p[b:], r[:, 0], r[:, 1])

        keys = list(self.points)
        pooled = {k: quad("pooled", k) for k in keys}
        if self.cfg.transform == "supr":
            pooled = self._supr(pooled, {k: quad("last", k) for k in keys})
        elif self.transforms:
            pooled = {k: StateQuad(*(self.transforms[_key(k)](h) for h in q)) for k, q in pooled.items()}
        if self.token_level:
            mask = rows["token_mask"]  # policy and (live) reference passes share the layout
            tokens = {k: quad("tokens", k) for k in pooled}
            inputs.hidden = HiddenInputs(pooled=pooled, tokens=tokens, chosen_mask=mask[:b], rejected_mask=mask[b:])
        else:
            inputs.hidden = HiddenInputs(pooled=pooled)
        return inputs

    def _supr(self, pooled: dict[str, StateQuad], last: dict[str, StateQuad]) -> dict[str, StateQuad]:
        """Apply supr along each series of consecutive points of the same kind."""
        out = {}
        for series in _series(list(pooled)):
            # The head projector lives in the residual stream; side activations of other
            # widths use the identity (the mask is then "coordinates that rose").
            proj = self.projector if pooled[series[0]][0].shape[-1] == self.projector.shape[0] else torch.eye(pooled[series[0]][0].shape[-1], device=self.projector.device)
            per_state = [supr([pooled[k][i] for k in series], last_token_states=[last[k][i] for k in series], projector=proj) for i in range(4)]
            for j, k in enumerate(series[1:]):
                out[k] = StateQuad(*(per_state[i][j] for i in range(4)))
        return out


def _series(keys: list[str]) -> list[list[str]]:
    """Group capture keys by kind ('10' → hs; '10.o_proj' → o_proj), in depth order."""
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(k.partition(".")[2], []).append(k)
    return [sorted(g, key=lambda k: int(k.partition(".")[0])) for g in groups.values()]


def _key(point: str) -> str:
    return point.replace(".", "__")


def _input_dim(module: nn.Module) -> int:
    return module.in_features
