"""Name → loss component. Adding a loss: one module, one line here, its tests."""

from __future__ import annotations

from typing import Callable

from innerpo.inner.losses import InnerDPOLoss, PrefVecLoss, RankLoss, ReprPOMSELoss, RerouteRetainLoss
from innerpo.inner.mse import MSE_RETAIN_WEIGHT
from innerpo.losses.base import PreferenceLoss, check_beta
from innerpo.losses.combined import CombinedLoss
from innerpo.losses.aot import AOTLoss
from innerpo.losses.apo import APOLoss
from innerpo.losses.bco import BCOLoss
from innerpo.losses.cpo import CPOLoss
from innerpo.losses.discopop import DiscoPOPLoss
from innerpo.losses.dpo import DPOLoss
from innerpo.losses.dpo_norm import DPONormLoss
from innerpo.losses.exo import EXOLoss
from innerpo.losses.hinge import HingeLoss
from innerpo.losses.ipo import IPOLoss
from innerpo.losses.kto import KTOLoss
from innerpo.losses.nca import NCALoss
from innerpo.losses.orpo import ORPOLoss
from innerpo.losses.robust import RobustDPOLoss
from innerpo.losses.sft import SFTLoss
from innerpo.losses.simper import SimPERLoss
from innerpo.losses.simpo import SimPOLoss
from innerpo.losses.sppo import SPPOLoss
from innerpo.methods.config import MethodConfig

# Each factory reads the hyperparameters its loss needs from the method config.
LOSSES: dict[str, Callable[[MethodConfig], PreferenceLoss]] = {
    "dpo": lambda c: DPOLoss(beta=c.beta, label_smoothing=c.label_smoothing),
    "ipo": lambda c: IPOLoss(beta=c.beta, normalize=c.ipo_normalize),
    "hinge": lambda c: HingeLoss(beta=c.beta),
    "robust": lambda c: RobustDPOLoss(beta=c.beta, label_smoothing=c.label_smoothing),
    "nca": lambda c: NCALoss(beta=c.beta),
    "bco": lambda c: BCOLoss(beta=c.beta),
    "sppo": lambda c: SPPOLoss(beta=c.beta),
    "apo-zero": lambda c: APOLoss(beta=c.beta, mode="zero"),
    "apo-down": lambda c: APOLoss(beta=c.beta, mode="down"),
    "exo": lambda c: EXOLoss(beta=c.beta, label_smoothing=c.label_smoothing),
    "discopop": lambda c: DiscoPOPLoss(beta=c.beta, tau=c.discopop_tau),
    "aot": lambda c: AOTLoss(beta=c.beta, label_smoothing=c.label_smoothing, unpaired=c.aot_unpaired),
    "aot-unpaired": lambda c: AOTLoss(beta=c.beta, label_smoothing=c.label_smoothing, unpaired=True),
    "dpo-norm": lambda c: DPONormLoss(beta=c.beta),
    "simper": lambda c: SimPERLoss(),
    "simpo": lambda c: SimPOLoss(
        beta=c.beta,
        gamma=c.simpo_gamma,
        gamma_beta_ratio=c.simpo_gamma_beta_ratio,
        label_smoothing=c.label_smoothing,
    ),
    "cpo": lambda c: CPOLoss(beta=c.beta, label_smoothing=c.label_smoothing, alpha=c.cpo_alpha),
    "orpo": lambda c: ORPOLoss(beta=c.beta),
    "kto": lambda c: KTOLoss(
        beta=c.beta,
        desirable_weight=c.kto_desirable_weight,
        undesirable_weight=c.kto_undesirable_weight,
        kl_estimate=c.kto_kl_estimate,
    ),
    "sft": lambda c: SFTLoss(),
    # hidden-state terms (innerpo.inner); the method collects the states they read
    "innerpo": lambda c: InnerDPOLoss(
        align_method=c.align_method,
        beta=c.hidden_beta,
        loss_type=c.hidden_loss_type,
        trust_region=c.trust_region,
        trust_region_mode=c.trust_region_mode,
        trust_region_scope=c.trust_region_scope,
        token_constraint=c.token_constraint,
        align_kwargs=_align_kwargs(c),
    ),
    "prefvec": lambda c: PrefVecLoss(orth_weight=c.prefvec_orth_weight, angle_weight=c.prefvec_angle_weight, trust_region=c.trust_region),
    "mse": lambda c: ReprPOMSELoss(alpha=MSE_RETAIN_WEIGHT if c.retain_weight is None else c.retain_weight),
    "reroute": lambda c: RerouteRetainLoss(alpha=1.0 if c.retain_weight is None else c.retain_weight),
    "rank": lambda c: RankLoss(beta=c.hidden_beta, loss_type=c.hidden_loss_type),
}


def _align_kwargs(c: MethodConfig) -> dict:
    """The settings of the chosen InnerDPO align method that MethodConfig carries."""
    if c.align_method in ("logodds", "odds"):
        return {"smoothing": c.logodds_smoothing}
    if c.align_method == "stabilized_ratio":
        return {"floor": c.stabilized_floor, "floor_mode": c.stabilized_floor_mode}
    return {}


def build_loss(name: str, cfg: MethodConfig) -> PreferenceLoss:
    """One component by name, configured from `cfg`."""
    try:
        factory = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}") from None
    return factory(cfg)


def method_terms(cfg: MethodConfig) -> list[tuple[str, float]]:
    """(loss name, weight) pairs of a method: the output-level losses, then the hidden term."""
    if cfg.output_loss is None:
        if len(cfg.weights) != len(cfg.losses):
            raise ValueError(f"got {len(cfg.losses)} losses but {len(cfg.weights)} weights; give one --method.weights value per loss")
        terms = list(zip(cfg.losses, cfg.weights))
    else:
        terms = [] if cfg.output_loss == "none" else [(cfg.output_loss, 1.0)]
    if cfg.hidden_loss != "none":
        terms.append((cfg.hidden_loss, cfg.alpha))
    return terms


#: Losses that read the shared ``label_smoothing`` setting (the others would ignore it).
READS_LABEL_SMOOTHING = frozenset({"dpo", "robust", "exo", "aot", "aot-unpaired", "simpo", "cpo"})


def check_shared_settings(cfg: MethodConfig, names: list[str]) -> None:
    """Refuse shared settings that are invalid, or set but read by none of the chosen losses."""
    check_beta(cfg.beta, "method")
    if cfg.label_smoothing != 0.0 and not READS_LABEL_SMOOTHING & set(names):
        raise ValueError(
            f"label_smoothing={cfg.label_smoothing} would be ignored: none of the chosen losses "
            f"({', '.join(names) or 'none'}) reads it (only {', '.join(sorted(READS_LABEL_SMOOTHING))} do); "
            "drop --method.label_smoothing or set it to 0"
        )


def build_method_loss(cfg: MethodConfig) -> CombinedLoss:
    """The method's whole objective: its terms summed with their weights."""
    terms = method_terms(cfg)
    check_shared_settings(cfg, [name for name, _ in terms])
    return CombinedLoss({name: build_loss(name, cfg) for name, _ in terms}, [w for _, w in terms])
