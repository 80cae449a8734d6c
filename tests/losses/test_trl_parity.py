"""Parity with TRL 1.16: the same batch through TRL's own code and through innerpo gives
the same loss and the same metrics within 1e-5.

How TRL is called (harness in conftest.py, fixture ``trl``) — no TRL formula is
re-implemented here; trainers are created with ``object.__new__`` and only the attributes
their loss code reads, and the model is a stand-in that returns chosen log-probs:

* DPOTrainer._compute_loss, reference log-probs precomputed (``precompute_ref_logps``),
  model returning per-token log-probs (``fused_lm_head`` outputs). TRL sums them itself:
  **sum convention**; ``ipo`` and ``sigmoid_norm`` divide by TRL's completion-mask token
  count (innerpo: ``SeqLogps.ntok``). Covers dpo (``sigmoid``), ipo (normalized), hinge,
  robust, nca (``nca_pair``), bco (``bco_pair``), sppo (``sppo_hard``), apo-zero,
  apo-down, exo (``exo_pair``), discopop, aot, aot unpaired, dpo-norm (``sigmoid_norm``),
  sft, and dpo + sft combined (``loss_type=[sigmoid, sft]`` with ``loss_weights``).
* CPOTrainer.get_batch_loss_metrics (trl.experimental.cpo), model returning logits;
  TRL's concatenated_forward computes the log-probs: **sum** for ``sigmoid`` (innerpo
  ``cpo``), **per-token mean** for ``simpo`` (innerpo ``simpo``), and the NLL as a
  cross-entropy over all chosen completion tokens. Also simpo + α·sft combined against
  TRL's SimPO with ``cpo_alpha = α``.
* CPOTrainer.cpo_loss on given log-ratios: TRL 1.16's DPO ``sigmoid`` no longer has label
  smoothing, so cDPO (innerpo ``dpo`` with ε > 0) is compared with the cDPO-smoothed
  logistic loss of TRL's CPO code fed with the log-ratios.
* ORPOTrainer.get_batch_loss_metrics (trl.experimental.orpo), model returning logits;
  **per-token mean** log-probs in the odds (TRL's ``average_log_prob=True``).
* KTOTrainer._compute_loss, ``loss_type="kto"``, reference and reference-KL log-probs
  precomputed, the policy's KL log-probs from the stand-in model; **sum convention**.
  Unpaired batches go to ``KTOLoss.forward_unpaired``; paired batches to
  ``KTOLoss.forward`` and, unpaired as TRL does it (chosen → True, rejected → False), to TRL.

Where the conventions differ, the batches are chosen so both are defined the same:
* NLL terms (sft, cpo, orpo): innerpo averages per-token mean NLLs over the batch, TRL
  averages over all chosen tokens; the parity batches give all chosen completions the
  same length (rejected lengths differ). TRL's ORPO NLL also covers the prompt: the
  ORPO batch has an empty prompt.
* ``logps/*``: innerpo always logs summed log-probs; TRL's CPO-simpo and ORPO log
  per-token means there, compared with innerpo's ``logps/*_mean``.
* ``rewards/accuracies``: TRL's KTO does not log it (innerpo does on paired data).

Not comparable: IPO with ``ipo_normalize=False`` (TRL's DPO IPO is always normalized),
SimPER (not in TRL 1.16), KTO's ``batch`` reference point (not a TRL convention).
"""

from __future__ import annotations

import math

import pytest
import torch

from innerpo.losses.aot import AOTLoss
from innerpo.losses.apo import APOLoss
from innerpo.losses.base import SeqLogps
from innerpo.losses.bco import BCOLoss
from innerpo.losses.combined import CombinedLoss
from innerpo.losses.cpo import CPOLoss
from innerpo.losses.discopop import DiscoPOPLoss
from innerpo.losses.dpo import DPOLoss
from innerpo.losses.dpo_norm import DPONormLoss
from innerpo.losses.exo import EXOLoss
from innerpo.losses.hinge import HingeLoss
from innerpo.losses.ipo import IPOLoss
from innerpo.losses.kto import KL_POLICY_KEY, KL_REF_KEY, KTOLoss
from innerpo.losses.nca import NCALoss
from innerpo.losses.orpo import ORPOLoss
from innerpo.losses.robust import RobustDPOLoss
from innerpo.losses.sft import SFTLoss
from innerpo.losses.simpo import SimPOLoss
from innerpo.losses.sppo import SPPOLoss

TOL = 1e-5

# A batch of 4 pairs with mixed signs of the margin and unequal lengths.
PC = [-12.3, -40.1, -7.7, -25.0]
PR = [-15.9, -33.4, -11.2, -25.0]
RC = [-13.0, -38.0, -9.1, -24.2]
RR = [-14.1, -35.5, -10.0, -26.3]
NC = [4, 9, 3, 6]
NR = [5, 7, 8, 2]
NC_EQUAL = [5, 5, 5, 5]  # for NLL terms (see module docstring)

REWARD_KEYS = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"]
LOGP_KEYS = ["logps/chosen", "logps/rejected"]


def close(a, b, what):
    assert math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=TOL), (
        f"{what}: innerpo {float(a)!r} vs TRL {float(b)!r}"
    )


def compare(ours, theirs_loss, theirs_metrics, keys, key_map=None):
    close(ours.loss, theirs_loss, "loss")
    for k in keys:
        close(ours.metrics[(key_map or {}).get(k, k)], theirs_metrics[k], k)


# (id, innerpo component, TRL loss_type, extra TRL kwargs)
DPO_FAMILY = [
    ("dpo", lambda b: DPOLoss(beta=b), "sigmoid", {}),
    ("ipo", lambda b: IPOLoss(beta=b, normalize=True), "ipo", {}),
    ("hinge", lambda b: HingeLoss(beta=b), "hinge", {}),
    ("robust", lambda b: RobustDPOLoss(beta=b, label_smoothing=0.2), "robust", {"label_smoothing": 0.2}),
    ("nca", lambda b: NCALoss(beta=b), "nca_pair", {}),
    ("bco", lambda b: BCOLoss(beta=b), "bco_pair", {}),
    ("sppo", lambda b: SPPOLoss(beta=b), "sppo_hard", {}),
    ("apo-zero", lambda b: APOLoss(beta=b, mode="zero"), "apo_zero", {}),
    ("apo-down", lambda b: APOLoss(beta=b, mode="down"), "apo_down", {}),
    ("exo", lambda b: EXOLoss(beta=b, label_smoothing=1e-3), "exo_pair", {"label_smoothing": 1e-3}),
    ("exo-eps0.2", lambda b: EXOLoss(beta=b, label_smoothing=0.2), "exo_pair", {"label_smoothing": 0.2}),
    ("discopop", lambda b: DiscoPOPLoss(beta=b, tau=0.05), "discopop", {"discopop_tau": 0.05}),
    ("discopop-tau0.3", lambda b: DiscoPOPLoss(beta=b, tau=0.3), "discopop", {"discopop_tau": 0.3}),
    ("aot", lambda b: AOTLoss(beta=b, label_smoothing=0.1), "aot", {"label_smoothing": 0.1}),
    (
        "aot-unpaired",
        lambda b: AOTLoss(beta=b, label_smoothing=0.1, unpaired=True),
        "aot_unpaired",
        {"label_smoothing": 0.1},
    ),
    ("dpo-norm", lambda b: DPONormLoss(beta=b), "sigmoid_norm", {}),
]


@pytest.mark.parametrize("beta", [0.1, 0.7])
@pytest.mark.parametrize("name, make, loss_type, kw", DPO_FAMILY, ids=[c[0] for c in DPO_FAMILY])
def test_dpo_trainer_losses(lt, trl, name, make, loss_type, kw, beta):
    ours = make(beta)(lt.pairs(PC, PR, RC, RR, NC, NR))
    loss, metrics = trl.dpo([loss_type], PC, PR, RC, RR, NC, NR, beta=beta, **kw)
    compare(ours, loss, metrics, REWARD_KEYS + LOGP_KEYS)


def test_sft_matches_trl_on_equal_chosen_lengths(lt, trl):
    ours = SFTLoss()(lt.pairs(PC, PR, RC, RR, NC_EQUAL, NR))
    loss, metrics = trl.dpo(["sft"], PC, PR, RC, RR, NC_EQUAL, NR)
    close(ours.loss, loss, "loss")
    close(ours.metrics["logps/chosen"], metrics["logps/chosen"], "logps/chosen")


def test_sft_differs_from_trl_token_mean_on_unequal_lengths(lt, trl):
    # the documented convention difference: per-sequence means vs one mean over all tokens
    ours = SFTLoss()(lt.pairs(PC, PR, RC, RR, NC, NR))
    loss, _ = trl.dpo(["sft"], PC, PR, RC, RR, NC, NR)
    close(loss, -sum(PC) / sum(NC), "TRL token mean")
    assert abs(float(ours.loss) - loss) > 1e-3


def test_dpo_plus_sft_combined_matches_trl_multi_loss(lt, trl):
    combined = CombinedLoss({"dpo": DPOLoss(beta=0.1), "sft": SFTLoss()}, [1.0, 0.2])
    ours = combined(lt.pairs(PC, PR, RC, RR, NC_EQUAL, NR))
    loss, metrics = trl.dpo(["sigmoid", "sft"], PC, PR, RC, RR, NC_EQUAL, NR, beta=0.1, weights=[1.0, 0.2])
    compare(ours, loss, metrics, REWARD_KEYS + LOGP_KEYS)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_cdpo_label_smoothing_matches_trl_cpo_loss(lt, trl, eps):
    ours = DPOLoss(beta=0.5, label_smoothing=eps)(lt.pairs(PC, PR, RC, RR, NC, NR))
    ratios_c = [p - r for p, r in zip(PC, RC)]
    ratios_r = [p - r for p, r in zip(PR, RR)]
    loss, chosen_rewards, rejected_rewards = trl.cpo_loss(ratios_c, ratios_r, beta=0.5, label_smoothing=eps)
    close(ours.loss, loss, "loss")
    close(ours.metrics["rewards/chosen"], chosen_rewards.mean(), "rewards/chosen")
    close(ours.metrics["rewards/rejected"], rejected_rewards.mean(), "rewards/rejected")


@pytest.mark.parametrize("beta, eps, alpha", [(0.1, 0.0, 1.0), (0.5, 0.2, 0.3), (0.05, 0.0, 0.0)])
def test_cpo_matches_trl(lt, trl, beta, eps, alpha):
    ours = CPOLoss(beta=beta, label_smoothing=eps, alpha=alpha)(lt.pairs(PC, PR, nc=NC_EQUAL, nr=NR))
    loss, metrics = trl.cpo("sigmoid", PC, PR, NC_EQUAL, NR, beta=beta, label_smoothing=eps, cpo_alpha=alpha)
    # TRL skips the NLL (and logs 0) when cpo_alpha = 0; innerpo still logs it
    compare(ours, loss, metrics, REWARD_KEYS + LOGP_KEYS + (["nll_loss"] if alpha else []))


MEAN_LOGPS = {"logps/chosen": "logps/chosen_mean", "logps/rejected": "logps/rejected_mean"}


@pytest.mark.parametrize("beta, gamma, eps", [(2.0, 0.5, 0.0), (2.5, 1.4, 0.1), (0.1, 0.0, 0.0)])
def test_simpo_matches_trl(lt, trl, beta, gamma, eps):
    ours = SimPOLoss(beta=beta, gamma=gamma, label_smoothing=eps)(lt.pairs(PC, PR, nc=NC, nr=NR))
    loss, metrics = trl.cpo("simpo", PC, PR, NC, NR, beta=beta, label_smoothing=eps, cpo_alpha=0.0, simpo_gamma=gamma)
    compare(ours, loss, metrics, REWARD_KEYS + LOGP_KEYS, MEAN_LOGPS)


def test_simpo_gamma_beta_ratio_matches_trl_absolute_gamma(lt, trl):
    # paper convention γ/β = 0.4 at β = 2.5 is TRL's simpo_gamma = 1.0
    ours = SimPOLoss(beta=2.5, gamma_beta_ratio=0.4)(lt.pairs(PC, PR, nc=NC, nr=NR))
    loss, _ = trl.cpo("simpo", PC, PR, NC, NR, beta=2.5, cpo_alpha=0.0, simpo_gamma=1.0)
    close(ours.loss, loss, "loss")


def test_simpo_plus_sft_matches_trl_simpo_with_cpo_alpha(lt, trl):
    combined = CombinedLoss({"simpo": SimPOLoss(beta=2.0, gamma=0.5), "sft": SFTLoss()}, [1.0, 0.4])
    ours = combined(lt.pairs(PC, PR, nc=NC_EQUAL, nr=NR))
    loss, metrics = trl.cpo("simpo", PC, PR, NC_EQUAL, NR, beta=2.0, cpo_alpha=0.4, simpo_gamma=0.5)
    compare(ours, loss, metrics, REWARD_KEYS, MEAN_LOGPS)
    close(ours.metrics["nll_loss"], metrics["nll_loss"], "nll_loss")


@pytest.mark.parametrize("beta", [0.1, 0.25])
def test_orpo_matches_trl(lt, trl, beta):
    ours = ORPOLoss(beta=beta)(lt.pairs(PC, PR, nc=NC_EQUAL, nr=NR))
    loss, metrics = trl.orpo(PC, PR, NC_EQUAL, NR, beta=beta)
    keys = REWARD_KEYS + LOGP_KEYS + ["nll_loss", "log_odds_ratio", "log_odds_chosen"]
    compare(ours, loss, metrics, keys, MEAN_LOGPS)


KTO_KEYS = ["kl", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"]


@pytest.mark.parametrize(
    "beta, dw, uw, kl_shift",
    [(0.1, 1.0, 1.0, 0.0), (0.3, 1.5, 0.7, 0.0), (0.1, 1.0, 1.0, -5.0)],  # last: negative KL, clamped to 0
)
def test_kto_unpaired_matches_trl(trl, beta, dw, uw, kl_shift):
    policy = [-12.3, -40.1, -7.7, -25.0, -15.9, -33.4]
    ref = [-13.0, -38.0, -9.1, -24.2, -14.1, -35.5]
    ntok = [4, 9, 3, 6, 5, 7]
    labels = [True, False, False, True, True, False]
    kl_policy = [-20.5 + kl_shift, -31.0, -9.9, -18.2, -26.0, -12.4]
    kl_ref = [-22.0, -30.1, -12.3, -18.0, -27.5, -15.0]
    loss = KTOLoss(beta=beta, desirable_weight=dw, undesirable_weight=uw)
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    ours = loss.forward_unpaired(
        SeqLogps(t(policy), t(ntok)), SeqLogps(t(ref), t(ntok)), torch.tensor(labels), t(kl_policy), t(kl_ref)
    )
    trl_loss, metrics = trl.kto(
        policy, ref, ntok, labels, kl_policy, kl_ref, beta=beta, desirable_weight=dw, undesirable_weight=uw
    )
    compare(ours, trl_loss, metrics, KTO_KEYS)


def test_kto_paired_matches_trl_on_unpaired_pairs(lt, trl):
    x = lt.pairs(PC, PR, RC, RR, NC, NR, kl=False)
    # KL sequences: TRL rotates the completions of the (unpaired) batch by one
    kl_policy = [-14.0, -39.0, -8.1, -26.4, -16.0, -30.2, -12.5, -24.4]
    kl_ref = [-15.2, -37.9, -9.0, -25.0, -14.8, -33.0, -10.9, -25.1]
    x.extra[KL_POLICY_KEY] = torch.tensor(kl_policy, dtype=torch.float64)
    x.extra[KL_REF_KEY] = torch.tensor(kl_ref, dtype=torch.float64)
    ours = KTOLoss(beta=0.2, desirable_weight=1.33, undesirable_weight=1.0)(x)
    trl_loss, metrics = trl.kto(
        PC + PR,
        RC + RR,
        NC + NR,
        [True] * 4 + [False] * 4,
        kl_policy,
        kl_ref,
        beta=0.2,
        desirable_weight=1.33,
        undesirable_weight=1.0,
    )
    compare(ours, trl_loss, metrics, KTO_KEYS)
