"""Hidden-state methods (InnerPO): collect, pool and transform states, then the loss.

Per micro-batch: the policy forward (the one the output loss needs) runs with capture
hooks at the chosen blocks; the reference states come from the same reference pass that
yields reference log-probs (or from the on-disk reference table, which then stores the
pooled reference states too). Nothing runs an extra forward.

Pipeline per collected point k (a block for `hs`, a block's o_proj/down_proj input for
`side`, the output of a linear module matched by `collect_modules` for `modules`):
states [2B, T, D] → (with `norm_before_reduce`: each token's state divided by its
p-norm) → masked mean over completion tokens (optional sink filter, decided on the raw
states)
→ StateQuad(policy chosen, policy rejected, reference chosen, reference rejected), each
[B, D] → transform (`supr` keeps the coordinates that rose between consecutive collected
points, read at the last real completion token of the *reference* states, the same
coordinates for policy and reference of each side of a pair; `ether`, `hra`, `ortho`, ...
map the states with trainable parameters owned by this method) → HiddenInputs for the
hidden loss.

Never inert. On its first training call the method takes the hidden term's own gradient
with respect to every trainable parameter (torch.autograd.grad, graph retained for the
loop's backward) and stops with :class:`InertHiddenTermError`, naming the cause, when it
is zero or not finite. Terms at a stationary point at initialisation by design (see
``innerpo.inner.align.STATIONARY_AT_INIT``) are checked after the first update instead,
once the other losses have moved the policy. (Trainable transforms get no gradient on the
first step by construction: at initialisation policy = reference and every hidden loss is
flat in the transform; they train from the second step on, with their steps scaled by
``transform_lr_scale``.)

Orthogonal transforms (ether, oft, hra, ortho) with a loss that reads states only through
inner products and Euclidean norms (InnerDPO with those align methods, PrefVec, mse,
reroute) provably change nothing; :func:`inert_transform_reason` says so and the method
refuses such a combination unless ``allow_inert_transform`` is set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from innerpo.data.batching import PairBatch
from innerpo.errors import ConfigError
from innerpo.inner import (
    HiddenInputs,
    StateQuad,
    head_projector,
    last_real_token,
    make_transform,
    masked_mean,
    parse_layers,
    supr_masks,
)
from innerpo.inner.common import NormOrder
from innerpo.inner.pooling import sink_mask, unit_tokens
from innerpo.inner.supr import SuprParams
from innerpo.inner.transforms import TransformParams, scale_steps
from innerpo.losses.base import LossInputs
from innerpo.losses.combined import CombinedLoss
from innerpo.methods.base import OutputMethod
from innerpo.methods.kto import mismatched_kl_logps, needs_kl_inputs
from innerpo.models.capture import DEFAULT_MODULE_PATTERN, capture, capture_points, decoder_layers, matching_modules
from innerpo.models.forward import ForwardOutput, body_and_head, forward_pairs, rows_of, seqs_of
from innerpo.params import option

TRAINABLE = ("ether", "etherplus", "oft", "hra", "ortho")
ORTHOGONAL = ("ether", "oft", "hra", "ortho")


INERT_GRAD_TOL = 1e-5
"""A hidden term's gradient norm below this counts as zero. Policy and reference passes
that agree up to rounding (the adapter starts at zero) leave ~1e-7 of float noise in a
stationary term's gradient; a term that trains has O(0.01–1)."""


@dataclass
class HiddenParams(SuprParams, TransformParams, NormOrder):
    """The options of the hidden-state method layer: what is collected, how, and the term's weight."""

    alpha: float = 1.0
    """Weight of the hidden-state term (> 0)."""
    collect: Literal["hs", "side", "modules"] = "hs"
    """Where states are read: `hs` the residual stream after each chosen block; `side` the inputs of its attention output and MLP down projections; `modules` the outputs of the block's linear modules matching `collect_modules`."""  # noqa: E501
    collect_modules: str = option(DEFAULT_MODULE_PATTERN, read_when="with --method.collect=modules")
    """Regular expression matched in full against each linear module's path inside a chosen block (`self_attn.q_proj`, `mlp.up_proj`); their outputs are collected (ReprPO's collect_input=False, collection_keys_out: q, k, v, qkv, gate, up)."""  # noqa: E501
    norm_before_reduce: bool = False
    """Divide each token's state by its norm_p-norm before pooling over the completion (ReprPO InnerDPO's norm_before_reduce, no-op in its vast2 code); off: pool raw states."""  # noqa: E501
    layers: str = "0.25,0.5,0.75"
    """Blocks to collect: indices, negative indices, fractions of depth, ranges (`4:12:2`, `0.25:0.75`), comma lists."""
    transform: Literal["none", "supr", "ether", "etherplus", "oft", "hra", "ortho"] = "none"
    """Map applied to all four pooled states before the hidden loss (trainable ones train with the adapter)."""
    sink_threshold: float | None = None
    """Drop "attention sink" tokens whose norm exceeds this multiple of the row's median before pooling (None: keep all)."""  # noqa: E501
    allow_inert_transform: bool = option(False, read_when="with an orthogonal transform and a loss it cannot change")
    """Train an orthogonal transform (ether, oft, hra, ortho) with a loss that reads only inner products, which it provably cannot change (an ablation row identical to `none`)."""  # noqa: E501


def hidden_reads(p: HiddenParams, inert: bool) -> set[str]:
    """The method layer's options read under `p`; `inert`: the transform cannot change the term."""
    reads = {"alpha", "collect", "layers", "transform", "sink_threshold", "norm_before_reduce"}
    if p.collect == "modules":
        reads.add("collect_modules")
    if p.norm_before_reduce:
        reads.add("norm_p")
    if p.transform == "supr":
        reads.add("supr_threshold")
    if p.transform in TRAINABLE and p.transform != "ortho":  # ortho keeps its own parametrization
        reads.add("transform_lr_scale")
    if inert:
        reads.add("allow_inert_transform")
    return reads


class InertHiddenTermError(ConfigError):
    """The hidden-state term cannot move the model as configured; the message names the cause."""


def inert_transform_reason(transform: str, term: str, term_cls, term_p) -> str | None:
    """Why `transform` cannot change the hidden term `term` (class `term_cls` under its
    settings `term_p`), or None when it can."""
    if transform not in ORTHOGONAL or not term_cls.rotation_invariant(term_p):
        return None
    align = getattr(term_p, "align_method", None)
    what = f"innerpo with align method {align!r}" if term == "innerpo" else repr(term)
    return (
        f"transform {transform!r} is orthogonal and is applied to all four states, and the hidden loss {what} "
        "reads them only through inner products and Euclidean norms, which an orthogonal map preserves: the loss, "
        f"its gradient and the trained adapter are identical to transform 'none' and the {transform} "
        "parameters never receive gradient. Use transform none or etherplus, a loss that reads coordinates "
        "(rank; innerpo with align para, para_orth or para_orth2), or pass "
        "--method.allow_inert_transform for an ablation row that should equal 'none'"
    )


class HiddenMethod(OutputMethod):
    """Output-level losses plus one hidden-state term, states collected in the same passes.

    loss: the method's objective, whose component `term` is the hidden term; params: the
    method layer's options; term_p: the hidden term's own options (its ``Params``).
    """

    def __init__(self, loss: CombinedLoss, params: HiddenParams, term: str, term_p):
        super().__init__(loss)
        if not self.loss.uses_hidden:
            raise ValueError("HiddenMethod needs a hidden-state loss (--method.hidden_loss)")
        if not (math.isfinite(params.alpha) and params.alpha > 0):
            raise ConfigError(
                f"--method.alpha={params.alpha}: the hidden term's weight must be > 0 (0 trains the output "
                "loss alone; use its own preset)"
            )
        if not (math.isfinite(params.transform_lr_scale) and params.transform_lr_scale > 0):
            raise ConfigError(f"--method.transform_lr_scale={params.transform_lr_scale} must be a finite number > 0")
        if params.norm_before_reduce and not (math.isfinite(params.norm_p) and params.norm_p >= 1):
            raise ConfigError(f"--method.norm_p={params.norm_p} must be a finite number >= 1 (a norm)")
        if params.supr_threshold is not None and not math.isfinite(params.supr_threshold):
            raise ConfigError(
                f"--method.supr_threshold={params.supr_threshold} must be finite (or None for the relative cut)"
            )
        term_cls = type(self.loss.components[term])
        reason = inert_transform_reason(params.transform, term, term_cls, term_p)
        if reason and not params.allow_inert_transform:
            raise ConfigError(
                f"--method.transform={params.transform} with --method.hidden_loss={term} is refused: {reason}"
            )
        self.cfg = params
        self.term = term
        self.trust_region = getattr(term_p, "trust_region", None) if term == "innerpo" else None
        self.token_level = term_cls.token_level(term_p)
        # Token-level states cannot come from the compact reference table.
        self.cacheable_reference = not self.token_level
        self.points: dict[str, nn.Module] = {}
        self.layers: list[int] = []
        self.transforms = nn.ModuleDict()
        self._watched: list[nn.Parameter] = []  # the adapter's trainable parameters (bind)
        self._check = "first"  # inert check: first → (after an update) second → done
        self.checked_grad_norm: float | None = None
        self._supr_kept: dict[str, float] = {}  # share of coordinates supr kept, per point, last batch
        self._stationary = term_cls.stationary_at_init(term_p)
        if self._stationary and len(self.loss.components) == 1:
            raise ConfigError(
                f"align method {getattr(term_p, 'align_method', term)!r} is at its stationary point at "
                "initialisation (value and gradient 0 "
                "while policy = reference) and acts only once another loss has moved the policy; with "
                "--method.output_loss=none nothing does, so the run would be driven by float noise. Add an output loss "
                "(e.g. --method.output_loss=dpo) or choose a directional align method (pars_rat, logodds, ...)"
            )
        self.loss.components[term].register_forward_hook(self._inert_check)

    def bind(self, model) -> None:
        """Resolve layers and capture points on the loaded model; build transforms."""
        n = len(decoder_layers(model))
        self.layers = parse_layers(self.cfg.layers, n)
        self.points = capture_points(model, self.layers, self.cfg.collect, self.cfg.collect_modules)
        if self.cfg.transform == "supr":
            if len(self.layers) < 2:
                raise ValueError(
                    "transform supr compares consecutive collected layers: "
                    f"--method.layers={self.cfg.layers!r} gives only {self.layers}"
                )
            _, head, config = body_and_head(model)
            self.register_buffer("projector", head_projector(head.weight), persistent=False)
        elif self.cfg.transform in TRAINABLE:
            dims = {
                k: _input_dim(m)
                if self.cfg.collect == "side"
                else _output_dim(m)
                if self.cfg.collect == "modules"
                else model.config.hidden_size
                for k, m in self.points.items()
            }
            self.transforms = nn.ModuleDict(
                {
                    _key(k): scale_steps(make_transform(self.cfg.transform, d), self.cfg.transform_lr_scale)
                    for k, d in dims.items()
                }
            )
        self._watched = [p for p in model.parameters() if p.requires_grad]

    def reference_settings(self) -> dict:
        settings = {
            **super().reference_settings(),
            "collect": self.cfg.collect,
            "layers": self.layers,
            "sink_threshold": self.cfg.sink_threshold,
            "supr": self.cfg.transform == "supr",
        }
        if self.cfg.collect == "modules":  # the pattern and the modules it matched
            settings.update(collect_modules=self.cfg.collect_modules, points=list(self.points))
        if self.cfg.norm_before_reduce:
            settings["norm_before_reduce"] = self.cfg.norm_p
        return settings

    def after_backward(self, model) -> dict[str, float]:
        if self._check == "wait":  # the optimizer step that follows moves the policy
            self._check = "second"
        return {f"supr/kept/{k}": v for k, v in self._supr_kept.items()}

    def _forward(self, model, batch: PairBatch, stats: tuple[str, ...] = ()) -> tuple[ForwardOutput, dict[str, Tensor]]:
        """Log-probs plus, per point, pooled [2B, D] (and last-token / token states when needed)."""
        with capture(self.points, self.cfg.collect) as store:
            out = forward_pairs(model, batch, observing_hooks=True, stats=stats)
        mask = out.completion_mask  # the layout of the captured states (last pass)
        rows = {}
        for k, states in store.items():
            rows[f"pooled/{k}"] = self._pool(states, mask)
            if self.cfg.transform == "supr":  # masks come from the reference pass's rows
                rows[f"last/{k}"] = last_real_token(states, mask)
            if self.token_level:
                rows[f"tokens/{k}"] = states
                rows["token_mask"] = mask
        return out, rows

    def _pool(self, states: Tensor, mask: Tensor) -> Tensor:
        """[N, T, D] → [N, D]: the masked mean (sinks judged on the raw states), of unit
        tokens with `norm_before_reduce`."""
        if not self.cfg.norm_before_reduce:
            return masked_mean(states, mask, self.cfg.sink_threshold)
        keep = sink_mask(states, mask, self.cfg.sink_threshold) if self.cfg.sink_threshold is not None else mask
        return masked_mean(unit_tokens(states, self.cfg.norm_p), keep)

    def reference_rows(self, model, batch: PairBatch) -> dict[str, Tensor]:
        out, rows = self._forward(model, batch, self.loss.reference_stats)
        b = batch.num_pairs
        table = rows_of(out.chosen, out.rejected)
        # Store chosen and rejected side by side: [B, 2, ...], so rows index pairs.
        table.update({name: torch.stack([t[:b], t[b:]], dim=1) for name, t in rows.items()})
        return table

    def loss_inputs(self, model, batch: PairBatch) -> LossInputs:
        policy, rows = self._forward(model, batch, self.loss.policy_stats)
        ref = self.reference(model, batch)
        b = batch.num_pairs
        inputs = LossInputs(policy.chosen, policy.rejected, *seqs_of(ref))
        if needs_kl_inputs(self.loss):  # KTO as the output loss: its mismatched KL reference point
            inputs.extra.update(mismatched_kl_logps(model, batch))

        def quad(prefix: str, k: str) -> StateQuad:
            p, r = rows[f"{prefix}/{k}"], ref[f"{prefix}/{k}"].to(rows[f"{prefix}/{k}"].dtype)
            return StateQuad(p[:b], p[b:], r[:, 0], r[:, 1])

        keys = list(self.points)
        pooled = {k: quad("pooled", k) for k in keys}
        if self.cfg.transform == "supr":
            pooled = self._supr(pooled, {k: ref[f"last/{k}"] for k in keys})
        elif self.transforms:
            pooled = {k: StateQuad(*(self.transforms[_key(k)](h) for h in q)) for k, q in pooled.items()}
        if self.token_level:
            mask = rows["token_mask"]  # policy and (live) reference passes share the layout
            tokens = {k: quad("tokens", k) for k in pooled}
            inputs.hidden = HiddenInputs(pooled=pooled, tokens=tokens, chosen_mask=mask[:b], rejected_mask=mask[b:])
        else:
            inputs.hidden = HiddenInputs(pooled=pooled)
        return inputs

    def _supr(self, pooled: dict[str, StateQuad], ref_last: dict[str, Tensor]) -> dict[str, StateQuad]:
        """Apply supr along each series of consecutive points of the same kind.

        ref_last: per point, the reference's last-token states [B, 2, D] (chosen, rejected).
        Masks come from them: the chosen side's mask selects the coordinates of policy and
        reference chosen states, the rejected side's those of both rejected states, so a
        step of the adapter never moves a mask and d_π, d_ref live on the same coordinates.
        """
        out = {}
        self._supr_kept = {}
        for series in _series(list(pooled)):
            # The head projector lives in the residual stream; side activations of other
            # widths use the identity (the mask is then "coordinates that rose").
            width = pooled[series[0]][0].shape[-1]
            proj = (
                self.projector if width == self.projector.shape[0] else torch.eye(width, device=self.projector.device)
            )
            side_masks = [
                supr_masks([ref_last[k][:, i] for k in series], projector=proj, threshold=self.cfg.supr_threshold)
                for i in (0, 1)
            ]
            for j, k in enumerate(series[1:]):
                mc, mr = side_masks[0][j], side_masks[1][j]
                self._supr_kept[k] = float(torch.cat([mc, mr]).float().mean())
                q = pooled[k]
                fc, fr = mc.to(q[0].dtype), mr.to(q[0].dtype)
                out[k] = StateQuad(q[0] * fc, q[1] * fr, q[2] * fc, q[3] * fr)
        return out

    def _inert_check(self, module, inputs, output) -> None:
        """Forward hook on the hidden term: its gradient must reach the adapter, finite and non-zero."""
        if not torch.is_grad_enabled() or self._check in ("wait", "done"):
            return
        first = self._check == "first"
        name = self.term
        if not output.loss.requires_grad:
            raise InertHiddenTermError(
                self._inert_message(f"the hidden term {name!r} does not depend on any trainable parameter")
            )
        grads = torch.autograd.grad(output.loss, self._watched, retain_graph=True, allow_unused=True)
        norm = math.sqrt(sum(float(g.detach().float().norm()) ** 2 for g in grads if g is not None))
        value = float(output.loss.detach())
        self.checked_grad_norm = norm  # the hidden term's own gradient norm w.r.t. the adapter, as checked
        if not math.isfinite(norm):
            raise InertHiddenTermError(
                f"the hidden term {name!r} has a non-finite gradient (value {value:.4g}); check the states' "
                "scale and --method.hidden_beta"
            )
        if norm < INERT_GRAD_TOL:
            if first and self._stationary:
                self._check = (
                    "wait"  # at its stationary point at initialisation by design: check once the policy has moved
                )
                return
            when = "at the first step" if first else "after the first update"
            what = (
                f"the hidden term {name!r} has zero gradient with respect to all {len(self._watched)} "
                f"trainable adapter tensors {when} (norm {norm:.2g}, value {value:.4g})"
            )
            margin = output.metrics.get("hidden/margin")
            if (
                value == 0.0 and margin is not None and float(margin) > 0
            ):  # −log σ(β·z) rounded to 0: saturated, not disconnected
                raise InertHiddenTermError(
                    f"{what}: the loss is saturated at mean margin {float(margin):.4g} (the align method's "
                    "units); lower --method.hidden_beta or choose a scale-free align method (pars_rat, "
                    "logodds, ...)"
                )
            raise InertHiddenTermError(self._inert_message(what))
        self._check = "done"

    def _inert_message(self, what: str) -> str:
        empty = [k for k, v in self._supr_kept.items() if v == 0.0]
        if empty:
            thr = self.cfg.supr_threshold
            cut = f"threshold {thr}" if thr is not None else "the relative threshold (0.1 × each row's RMS rise)"
            return (
                f"{what}: supr kept no coordinates at layer {empty[0]}: {cut} is above every rise; see "
                "--method.supr_threshold"
            )
        if self.trust_region is not None:
            return f"{what}: every margin may be beyond the trust region {self.trust_region}; see --method.trust_region"
        return (
            f"{what}; the policy's hidden states at layers {self.layers} do not move the term (check "
            "--method.layers and --model.target_modules)"
        )


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


def _output_dim(module: nn.Module) -> int:
    return getattr(module, "base_layer", module).out_features


def check_module_pattern(model_cfg, layers: list[int], pattern: str) -> None:
    """`--method.collect=modules`: `pattern` matches a linear module in every block of
    `layers`, checked from the model's config without loading weights (ValueError naming
    the pattern, the block and the module paths it has)."""
    from innerpo.models.load import block_module_names

    for layer, names in block_module_names(model_cfg, layers).items():
        try:
            matching_modules(names, pattern)
        except ValueError as e:
            raise ValueError(f"block {layer}: {e}") from None
