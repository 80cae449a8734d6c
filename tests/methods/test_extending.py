"""The method registry's design: one protocol, one build path, and a new loss that needs
only its own module and one registry line (the docs' "adding a method" example)."""

import dataclasses
import importlib.util
import sys
from dataclasses import dataclass

import pytest
import tyro

from innerpo.data.unpaired import UnpairedExample
from innerpo.errors import ConfigError
from innerpo.methods import registry
from innerpo.methods.base import Method
from innerpo.methods.build import build_method
from innerpo.methods.config import MethodConfig, method_config_class
from innerpo.methods.hidden import HiddenMethod
from innerpo.methods.kto import KTOUnpairedMethod
from innerpo.methods.presets import PRESETS, preset_method
from innerpo.methods.projection import ProjBPMethod, ProjGradMethod
from innerpo.methods.reads import check_options_read, readers
from innerpo.methods.sft_unpaired import SFTUnpairedMethod
from innerpo.methods.terms import inert_reason

MARGIN_DPO = '''
"""Margin DPO: DPO whose implicit reward margin must exceed a fixed m (an example)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from innerpo.losses.base import Beta, LabelSmoothing, LossInputs, LossOutput, PreferenceLoss, check_beta, require_reference, reward_metrics
from innerpo.losses.common import check_label_smoothing, check_nonneg


class MarginDPOLoss(PreferenceLoss):
    """Margin DPO: z = β·(chosen log-ratio − rejected log-ratio) − m, L = −log σ(z)."""

    @dataclass
    class Params(Beta, LabelSmoothing):
        margin: float = 0.0
        """Margin m >= 0 (in reward units) the chosen side must win by; 0 is plain DPO."""

    title = "Margin DPO, DPO with a fixed reward margin (an example)"

    def __init__(self, beta: float = 0.1, label_smoothing: float = 0.0, margin: float = 0.0):
        super().__init__()
        check_beta(beta, "margin-dpo")
        check_label_smoothing(label_smoothing, "margin-dpo")
        check_nonneg(margin, "margin-dpo", "margin", "0.5")
        self.beta, self.label_smoothing, self.margin = beta, label_smoothing, margin

    def forward(self, x: LossInputs) -> LossOutput:
        ref_c, ref_r = require_reference(x, "margin-dpo")
        chosen, rejected = x.policy_chosen.sum - ref_c.sum, x.policy_rejected.sum - ref_r.sum
        z = self.beta * (chosen - rejected) - self.margin
        eps = self.label_smoothing
        losses = -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)
        return LossOutput(losses.mean(), reward_metrics(self.beta * chosen, self.beta * rejected, x))
'''


@pytest.fixture
def margin_dpo(tmp_path, monkeypatch):
    """The new loss as its own module, and its one registry line; nothing else is edited."""
    path = tmp_path / "margin_dpo.py"
    path.write_text(MARGIN_DPO)
    spec = importlib.util.spec_from_file_location("margin_dpo", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "margin_dpo", module)
    spec.loader.exec_module(module)
    monkeypatch.setitem(registry.LOSSES, "margin-dpo", module.MarginDPOLoss)  # the registry line
    return module.MarginDPOLoss


def test_a_new_loss_needs_its_module_and_one_registry_line(margin_dpo, capsys):
    config = method_config_class()  # what innerpo.methods.config builds at import
    assert {f.name for f in dataclasses.fields(config)} == {f.name for f in dataclasses.fields(MethodConfig)} | {
        "margin"
    }

    @dataclass
    class Args:
        method: config = dataclasses.field(default_factory=config)

    # the flag exists, with the field's docstring as its help
    args = tyro.cli(Args, args=["--method.losses", "margin-dpo", "--method.margin", "0.5"], use_underscores=True)
    loss = build_method(args.method).loss.components["margin-dpo"]
    assert isinstance(loss, margin_dpo) and loss.margin == 0.5 and loss.beta == 0.1
    with pytest.raises(SystemExit):
        tyro.cli(Args, args=["--help"], use_underscores=True)
    helptext = capsys.readouterr().out
    assert "--method.margin" in helptext and "chosen side must win by" in helptext
    # the refusal of an option nobody chosen reads names the new loss as its reader
    assert readers("margin") == "margin-dpo"
    with pytest.raises(
        ConfigError,
        match=r"--method.margin=0.5 is set, but the chosen method \(dpo\) does not read it; it is read by: margin-dpo",
    ):
        build_method(config(margin=0.5))
    # a value the loss refuses is a configuration error naming the flag
    with pytest.raises(ConfigError, match="margin-dpo: margin must be a finite number >= 0.*--method.margin=0.5"):
        build_method(config(losses=["margin-dpo"], margin=-1.0))
    # and its preset is derived from the class
    from innerpo.methods.presets import _output_preset

    preset = _output_preset("margin-dpo")
    assert preset.description == margin_dpo.title and preset.method == {"losses": ["margin-dpo"], "weights": [1.0]}


def test_two_separate_declarations_of_one_option_are_refused(monkeypatch):
    from innerpo.losses.dpo import DPOLoss

    class Twin(DPOLoss):
        @dataclass
        class Params:
            beta: float = 0.3  # not through the shared Beta: the two could drift apart
            """Another β."""

    monkeypatch.setitem(registry.LOSSES, "twin", Twin)
    with pytest.raises(TypeError, match="option 'beta' is declared by both"):
        method_config_class()


def test_every_preset_builds_and_every_method_class_satisfies_the_protocol():
    kinds = set()
    for name in PRESETS:
        cfg = preset_method(name)
        if inert_reason(cfg):  # refused unless asked for as an ablation row
            cfg = dataclasses.replace(cfg, allow_inert_transform=True)
        method = build_method(cfg, name)
        assert isinstance(method, Method), name
        kinds.add(type(method))
    rows = [UnpairedExample("p", "c", True), UnpairedExample("q", "d", False)]
    for losses in (["kto"], ["sft"]):
        method = build_method(
            dataclasses.replace(MethodConfig(), losses=losses), None, rows if losses == ["kto"] else rows[:1]
        )
        assert isinstance(method, Method)
        kinds.add(type(method))
    from innerpo.methods.base import OutputMethod

    assert kinds == {OutputMethod, HiddenMethod, ProjGradMethod, ProjBPMethod, KTOUnpairedMethod, SFTUnpairedMethod}


def test_preset_values_are_not_the_users_doing():
    for name in ("robust", "simpo", "discopop", "hs-supr-innerpo"):
        check_options_read(preset_method(name), preset_method(name))
