import math

import optuna
import pytest

from innerpo.train.config import preset_config
from innerpo.tune.space import Param, SpaceError, check_space, default_space, parse_space, suggest


def test_yaml_numbers_written_without_a_dot_are_read_as_numbers():
    space = parse_space({"training.lr": {"low": "1e-5", "high": "1e-3", "log": True}}, "s.yaml")
    assert space["training.lr"] == Param(1e-5, 1e-3, log=True)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
        ({"low": 1.0, "high": 0.5}, "must be below high"),
        ({"low": 1, "high": 5, "step": 1, "log": True}, "step and log"),
        ({"choices": []}, "non-empty list"),
        ({"low": "x", "high": 1.0}, "low must be a number"),
        ({"low": 0.1, "high": 1.0, "scale": "log"}, "unknown field"),
        ([1, 2], "expected"),
    ],
)
def test_bad_distributions_are_refused_naming_file_and_key(spec, message):
    with pytest.raises(SpaceError, match=f"s.yaml: method.beta: .*{message}"):
        parse_space({"method.beta": spec}, "s.yaml")


def test_a_key_that_is_no_setting_or_a_value_the_method_refuses_is_named():
    cfg = preset_config("dpo")
    with pytest.raises(SpaceError, match="'training.learning_rate' is not a setting"):
        check_space(parse_space({"training.learning_rate": {"low": 1e-5, "high": 1e-3}}, "s.yaml"), cfg, "s.yaml")
    with pytest.raises(SpaceError, match="s.yaml: method.beta=-0.1"):
        check_space(parse_space({"method.beta": {"low": -0.1, "high": 1.0}}, "s.yaml"), cfg, "s.yaml")
    with pytest.raises(SpaceError, match="seeds are re-run"):
        check_space(parse_space({"training.seed": {"low": 1, "high": 5}}, "s.yaml"), cfg, "s.yaml")


def test_default_spaces_follow_the_method_family():
    dpo = default_space(preset_config("dpo"))
    assert set(dpo) == {"training.lr", "method.beta"} and dpo["training.lr"].log and dpo["method.beta"].log
    assert set(default_space(preset_config("sft"))) == {"training.lr"}  # SFT reads no beta
    assert default_space(preset_config("simpo"))["method.beta"].low >= 0.5  # SimPO's beta lives near 2
    inner = default_space(preset_config("hs-none-innerpo"))
    assert (
        inner["method.alpha"].log
        and "pars_rat" in inner["method.align_method"].choices
        and inner["method.layers"].choices
    )
    assert "method.align_method" not in default_space(preset_config("hs-none-prefvec"))
    proj = default_space(preset_config("projgrad"))
    assert proj["method.orth_scale"] == Param(0.0, 1.0)  # a share: uniform, not log
    for name in ("dpo", "sft", "simpo", "hs-none-innerpo", "hs-none-prefvec", "projgrad"):
        check_space(default_space(preset_config(name)), preset_config(name), name)


def test_suggestions_stay_in_range_and_a_seeded_sampler_repeats_them():
    space = parse_space(
        {
            "training.lr": {"low": 1e-5, "high": 1e-3, "log": True},
            "training.max_steps": {"low": 10, "high": 40, "step": 10},
            "method.layers": {"choices": ["0.5", "0.25,0.5,0.75"]},
        },
        "s",
    )

    def draws(seed):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        out = []
        for _ in range(5):
            trial = study.ask()
            out.append(suggest(trial, space))
            study.tell(trial, 0.5)
        return out

    values = draws(3)
    assert values == draws(3) and values != draws(4)
    for v in values:
        assert 1e-5 <= v["training.lr"] <= 1e-3
        assert v["training.max_steps"] in (10, 20, 30, 40)
        assert v["method.layers"] in ("0.5", "0.25,0.5,0.75")
    # log-uniform: the draws spread over orders of magnitude, not bunched near the top
    assert max(math.log10(v["training.lr"]) for v in values) - min(math.log10(v["training.lr"]) for v in values) > 0.5
