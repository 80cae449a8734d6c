"""Every hidden-state and gradient-projection preset on tiny-random: trains two steps, or is
refused up front with its reason; research-code names resolve; set options must be read."""

import dataclasses
import json
import math
from pathlib import Path

import pytest

from innerpo.cli import main
from innerpo.config import apply_yaml
from innerpo.errors import ConfigError
from innerpo.inner.align import ALIGN_METHODS
from innerpo.methods.build import build_method
from innerpo.methods.inner_presets import INNER_PRESETS
from innerpo.methods.presets import PRESETS, aliases, resolve_method_name
from innerpo.methods.reads import check_options_read
from innerpo.methods.terms import inert_reason
from innerpo.train.config import preset_config


def last_train_row(run):
    rows = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    return rows[-1]


def refused(name: str) -> bool:
    return inert_reason(preset_config(name).method) is not None


def train_exit(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(["train", *args])
    return e.value.code, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(n for n in INNER_PRESETS if not refused(n)))
def test_every_inner_preset_trains_two_steps(name, tiny_args, tmp_path):
    run = tmp_path / "run"
    hidden = INNER_PRESETS[name][1].get("hidden_loss")
    main(["train", name, *tiny_args, f"--output_dir={run}", *(["--method.layers=1,2,3"] if hidden else [])])
    row = last_train_row(run)
    assert row["step"] == 2 and all(math.isfinite(v) for v in row.values() if isinstance(v, float))
    if hidden:
        assert {"hidden/para/3", "hidden/orth", "hidden/cos/chosen"} <= set(row) or INNER_PRESETS[name][1][
            "collect"
        ] == "side", sorted(row)
        assert any(k.startswith("hidden/para/") for k in row)
    else:
        assert any(k.startswith("proj/") for k in row)


@pytest.mark.parametrize("name", sorted(n for n in INNER_PRESETS if refused(n)))
def test_orthogonal_transform_with_an_inner_product_loss_is_refused(name, tiny_args, tmp_path, capsys):
    run = tmp_path / "run"
    code, err = train_exit([name, *tiny_args, f"--output_dir={run}"], capsys)
    assert code == 2 and "orthogonal" in err and "--method.allow_inert_transform" in err
    assert not run.exists()


def test_inert_transform_trains_with_the_override_and_equals_none(tiny_args, tmp_path):
    """hs-ether-prefvec with --method.allow_inert_transform is the ablation row equal to hs-none-prefvec."""
    rows = {}
    for name, extra in [("hs-ether-prefvec", ["--method.allow_inert_transform"]), ("hs-none-prefvec", [])]:
        run = tmp_path / name
        main(["train", name, *tiny_args, f"--output_dir={run}", *extra])
        rows[name] = last_train_row(run)
    assert rows["hs-ether-prefvec"]["loss"] == pytest.approx(rows["hs-none-prefvec"]["loss"], abs=1e-5)
    with pytest.raises(ConfigError, match="allow_inert_transform"):  # set where it changes nothing
        build_method(
            dataclasses.replace(preset_config("hs-none-prefvec").method, allow_inert_transform=True), "hs-none-prefvec"
        )


@pytest.mark.parametrize("align", sorted(ALIGN_METHODS))
def test_every_align_method_trains(align, tiny_args, tmp_path):
    run = tmp_path / "run"
    main(
        [
            "train",
            "innerpo",
            *tiny_args,
            f"--output_dir={run}",
            f"--method.align_method={align}",
            "--training.max_steps=1",
        ]
    )
    assert math.isfinite(last_train_row(run)["innerpo/loss"])


def test_output_loss_alpha_and_trust_region_flags(tiny_args, tmp_path):
    run = tmp_path / "run"
    main(
        [
            "train",
            "innerpo",
            *tiny_args,
            f"--output_dir={run}",
            "--method.output_loss=simper",
            "--method.alpha=0.5",
            "--method.trust_region=0.5",
            "--method.trust_region_mode=both",
            "--method.trust_region_scope=pair",
            "--method.token_constraint=0.1",
            "--method.hidden_loss_type=ipo",
        ]
    )
    row = last_train_row(run)
    assert "simper/loss" in row and "innerpo/loss" in row
    assert row["loss"] == pytest.approx(row["simper/loss"] + 0.5 * row["innerpo/loss"], rel=1e-5)


def test_supr_on_tiny_random_keeps_coordinates_and_its_term_has_gradient(tiny_args, tmp_path):
    """ReprPO's fixed 0.1 masked every coordinate of tiny-random (a DPO run in disguise); the
    default relative threshold keeps some, and the fixed one is refused with the cause."""
    run = tmp_path / "run"
    main(["train", "hs-supr-innerpo", *tiny_args, f"--output_dir={run}", "--method.layers=1,2,3"])
    row = last_train_row(run)
    assert 0 < row["supr/kept/2"] < 1 and 0 < row["supr/kept/3"] < 1


def test_supr_threshold_above_every_rise_stops_with_the_cause(tiny_args, tmp_path, capsys):
    code, err = train_exit(
        [
            "hs-supr-innerpo",
            *tiny_args,
            f"--output_dir={tmp_path / 'run'}",
            "--method.layers=1,2,3",
            "--method.supr_threshold=0.1",
        ],
        capsys,
    )
    assert code == 2
    assert "supr kept no coordinates at layer 2: threshold 0.1 is above every rise; see --method.supr_threshold" in err


def test_stationary_hidden_term_alone_is_refused(tiny_args, tmp_path, capsys):
    """A term at its stationary point at initialisation with nothing to move the model is inert."""
    run = tmp_path / "run"
    code, err = train_exit(
        [
            "innerpo",
            *tiny_args,
            f"--output_dir={run}",
            "--method.output_loss=none",
            "--method.align_method=cosine_pref_direction",
        ],
        capsys,
    )
    assert code == 2 and "stationary point at initialisation" in err and not run.exists()


def test_stationary_term_with_dpo_is_checked_after_the_first_update(tiny_args, tmp_path, monkeypatch):
    """cosine_cross_model is flat at step 1 by design; once DPO has moved the policy its gradient is real."""
    from innerpo.methods import hidden

    seen = []
    real = hidden.HiddenMethod._inert_check
    monkeypatch.setattr(
        hidden.HiddenMethod, "_inert_check", lambda self, *a: (seen.append(self._check), real(self, *a))[1]
    )
    main(
        ["train", "innerpo", *tiny_args, f"--output_dir={tmp_path / 'run'}", "--method.align_method=cosine_cross_model"]
    )
    assert seen[:2] == ["first", "second"]


@pytest.mark.parametrize(
    "typed, canonical",
    [
        ("innerpo-supr", "hs-supr-innerpo"),
        ("innerpo-none", "hs-none-innerpo"),
        ("innerpo-ether", "hs-ether-innerpo"),
        ("hs-None-InDPO", "hs-none-innerpo"),
        ("hs-SupressedHS-PrefVec", "hs-supr-prefvec"),
        ("reprpo_ortho", "hs-ortho-prefvec"),
        ("ReprPO_ETHER_PrefVec", "hs-ether-prefvec"),
        ("hs-none-InnerDPO", "hs-none-innerpo"),
        ("side-none-InnerDPO", "side-none-innerpo"),
        ("HS_HRA_RANK", "hs-hra-rank"),
        ("DPO", "dpo"),
        ("apo_zero", "apo-zero"),
        ("reprpo_side", "side-none-prefvec"),
    ],
)
def test_research_names_resolve(typed, canonical):
    assert resolve_method_name(typed) == canonical
    assert preset_config(typed).method_name == canonical


def test_aliases_are_listed_in_help_and_unknown_names_suggest(capsys):
    assert "innerpo-supr" in aliases("hs-supr-innerpo") and "hs-SupressedHS-InnerDPO" in aliases("hs-supr-innerpo")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "innerpo-supr" in out
    with pytest.raises(ConfigError, match="did you mean hs-supr-innerpo"):
        resolve_method_name("hs-supr-innerpoo")


def test_research_readme_name_runs_under_its_own_name(tiny_args, tmp_path):
    run = tmp_path / "run"
    main(["train", "innerpo-supr", *tiny_args, f"--output_dir={run}", "--method.layers=1,2,3"])
    assert "method_name: hs-supr-innerpo" in (run / "config.yaml").read_text()


def test_unread_options_are_refused_before_anything_is_written(tiny_args, tmp_path, capsys):
    run = tmp_path / "run"
    code, err = train_exit(
        [
            "prefvec",
            *tiny_args,
            f"--output_dir={run}",
            "--method.align_method=no_such_method",
            "--method.hidden_beta=100",
        ],
        capsys,
    )
    assert code == 2 and not run.exists()
    assert (
        "--method.align_method='no_such_method' is set, but the chosen method (dpo + prefvec) does not read it; it is read by: innerpo"
        in err
    )
    assert "--method.hidden_beta=100.0 is set" in err and "innerpo, rank" in err


@pytest.mark.parametrize(
    "preset, settings, unread",
    [
        ("dpo", {"alpha": 0.5}, "alpha"),
        ("innerpo", {"trust_region_mode": "both"}, "trust_region_mode"),  # no trust region set
        ("innerpo", {"logodds_smoothing": 0.3}, "logodds_smoothing"),  # pars_rat has no smoothing
        ("innerpo", {"hidden_loss_type": "simper", "hidden_beta": 2.0}, "hidden_beta"),  # SimPER has no β
        ("prefvec", {"token_constraint": 0.5}, "token_constraint"),
        ("hs-none-rank", {"supr_threshold": 1.0}, "supr_threshold"),
        ("simper", {"beta": 0.3}, "beta"),
        ("hs-none-mse", {"output_loss": "ipo", "losses": ["sft"]}, "losses"),
    ],
)
def test_option_read_declarations(preset, settings, unread):
    cfg = dataclasses.replace(preset_config(preset).method, **settings)
    with pytest.raises(ConfigError, match=f"--method.{unread}="):
        check_options_read(cfg, preset_config(preset).method)


def test_preset_values_and_options_that_are_read_pass():
    for name in PRESETS:  # presets set fields away from the defaults themselves
        check_options_read(preset_config(name).method, preset_config(name).method)
    cfg = dataclasses.replace(
        preset_config("innerpo").method,
        align_method="logodds",
        logodds_smoothing=0.3,
        trust_region=1.0,
        trust_region_scope="batch",
    )
    check_options_read(cfg, preset_config("innerpo").method)
    check_options_read(
        dataclasses.replace(preset_config("simpo").method, losses=["simper"]), preset_config("simpo").method
    )


def test_token_constraint_keeps_the_reference_cache_only_where_it_is_read():
    innerpo = build_method(dataclasses.replace(preset_config("innerpo").method, token_constraint=0.5), "innerpo")
    assert not innerpo.cacheable_reference  # InnerDPO reads token states: live reference
    rank = build_method(dataclasses.replace(preset_config("hs-none-rank").method, token_constraint=0.0), "hs-none-rank")
    assert rank.cacheable_reference


CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
@pytest.mark.parametrize("preset", ["dpo", "hs-supr-innerpo", "hs-none-prefvec"])
def test_shipped_configs_parse_and_build(path, preset):
    from innerpo.eval.suites import get_suite

    cfg = apply_yaml(preset_config(preset), path)
    build_method(cfg.method, cfg.method_name)
    get_suite(cfg.eval.suite)
    assert {p.name for p in CONFIGS} >= {"dev.yaml", "llama-3-2-1b.yaml", "llama-3-2-3b.yaml"}


def test_dev_config_trains(tmp_path, monkeypatch):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    main(
        [
            "train",
            "innerpo-supr",
            f"--config={Path(__file__).parents[2] / 'configs' / 'dev.yaml'}",
            "--training.max_steps=2",
            "--data.max_train_pairs=16",
            "--eval.max_pairs=4",
            "--training.eval_every=0",
            f"--output_dir={run}",
        ]
    )
    assert last_train_row(run)["step"] == 2
