"""The registry: every name builds from the method config, flags are right, and
CombinedLoss sums weighted components."""

import dataclasses

import pytest
import torch

from innerpo.losses.base import PreferenceLoss
from innerpo.losses.combined import CombinedLoss
from innerpo.methods.build import build_loss, build_objective
from innerpo.methods.config import MethodConfig
from innerpo.methods.registry import LOSSES

EXPECTED = {
    "dpo",
    "ipo",
    "hinge",
    "robust",
    "nca",
    "bco",
    "sppo",
    "apo-zero",
    "apo-down",
    "exo",
    "discopop",
    "aot",
    "aot-unpaired",
    "dpo-norm",
    "simper",
    "simpo",
    "cpo",
    "orpo",
    "kto",
    "sft",
}
HIDDEN = {"innerpo", "prefvec", "mse", "reroute", "rank"}  # hidden-state terms, tested in tests/inner and tests/methods
REFERENCE_FREE = {"simper", "simpo", "cpo", "orpo", "sft"}
# names that cannot build from the default config, and the setting each needs
NEEDS = {"exo": {"label_smoothing": 1e-3}}


def config_for(name: str) -> MethodConfig:
    return dataclasses.replace(MethodConfig(), losses=[name], **NEEDS.get(name, {}))


def test_registry_has_every_name():
    assert set(LOSSES) == EXPECTED | HIDDEN


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builds_from_default_config(name):
    loss = build_loss(name, config_for(name))
    assert isinstance(loss, PreferenceLoss)
    assert loss.needs_reference is (name not in REFERENCE_FREE)


def test_exo_needs_label_smoothing_and_says_so():
    with pytest.raises(ValueError, match=r"--method.label_smoothing=1e-3"):
        build_loss("exo", MethodConfig())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_loss_is_finite_at_extremes(lt, name):
    lt.check_extremes(build_loss(name, config_for(name)))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_loss_is_a_scalar_with_detached_scalar_metrics(lt, name):
    x = lt.pairs([-3.0, -9.0], [-4.0, -7.0], [-3.5, -8.0], [-3.0, -8.0], [2.0, 5.0], [3.0, 4.0], grad=True)
    out = build_loss(name, config_for(name))(x)
    assert out.loss.dim() == 0 and out.loss.requires_grad
    assert out.metrics
    for k, v in out.metrics.items():
        assert isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad, k


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_loss_has_documented_docstring(name):
    doc = type(build_loss(name, config_for(name))).__doc__
    assert "arXiv:" in doc and "Shapes" in doc, name


def test_aot_flag_selects_unpaired():
    assert build_loss("aot", MethodConfig(aot_unpaired=True)).unpaired
    assert not build_loss("aot", MethodConfig()).unpaired
    assert build_loss("aot-unpaired", MethodConfig()).unpaired


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="known: .*dpo"):
        build_loss("dpp", MethodConfig())


def test_combined_dpo_sft_is_weighted_sum(lt):
    cfg = MethodConfig(losses=["dpo", "sft"], weights=[1.0, 0.2])
    combined = build_objective(cfg)
    assert isinstance(combined, CombinedLoss) and combined.uses_reference
    x = lt.pairs([-3.0, -9.0], [-4.0, -7.0], [-3.5, -8.0], [-3.0, -8.0], [2.0, 5.0], [3.0, 4.0])
    dpo = build_loss("dpo", cfg)(x)
    sft = build_loss("sft", cfg)(x)
    out = combined(x)
    lt.approx(out.loss, float(dpo.loss) + 0.2 * float(sft.loss))
    lt.approx(out.metrics["rewards/margins"], float(dpo.metrics["rewards/margins"]))
    lt.approx(out.metrics["sft/loss"], float(sft.loss))
    lt.approx(out.metrics["nll_loss"], float(sft.loss))  # no clash with dpo: keeps its own name


def test_reference_free_combination_skips_reference(lt):
    combined = build_objective(MethodConfig(losses=["simpo", "sft"], weights=[1.0, 0.5]))
    assert not combined.uses_reference
    combined(lt.pairs([-3.0], [-4.0], nc=[2.0], nr=[3.0]))  # no reference log-probs needed
