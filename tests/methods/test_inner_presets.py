"""Every hidden-state and gradient-projection preset trains two steps on tiny-random."""

import json
import math

import pytest

from innerpo.cli import main
from innerpo.inner.align import ALIGN_METHODS
from innerpo.methods.inner_presets import INNER_PRESETS


def last_train_row(run):
    rows = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    return rows[-1]


@pytest.mark.parametrize("name", sorted(INNER_PRESETS))
def test_every_inner_preset_trains_two_steps(name, tiny_args, tmp_path):
    run = tmp_path / "run"
    main(["train", name, *tiny_args, f"--output_dir={run}", "--method.layers=1,2,3"])
    row = last_train_row(run)
    assert row["step"] == 2 and all(math.isfinite(v) for v in row.values() if isinstance(v, float))
    hidden = INNER_PRESETS[name][1].get("hidden_loss")
    if hidden:
        assert {"hidden/para/3", "hidden/orth", "hidden/cos/chosen"} <= set(row) or INNER_PRESETS[name][1]["collect"] == "side", sorted(row)
        assert any(k.startswith("hidden/para/") for k in row)
    else:
        assert any(k.startswith("proj/") for k in row)


@pytest.mark.parametrize("align", sorted(ALIGN_METHODS))
def test_every_align_method_trains(align, tiny_args, tmp_path):
    run = tmp_path / "run"
    main(["train", "innerpo", *tiny_args, f"--output_dir={run}", f"--method.align_method={align}", "--training.max_steps=1"])
    assert math.isfinite(last_train_row(run)["innerpo/loss"])


def test_output_loss_alpha_and_trust_region_flags(tiny_args, tmp_path):
    run = tmp_path / "run"
    main([
        "train", "innerpo", *tiny_args, f"--output_dir={run}", "--method.output_loss=simper", "--method.alpha=0.5",
        "--method.trust_region=0.5", "--method.trust_region_mode=both", "--method.token_constraint=0.1",
    ])
    row = last_train_row(run)
    assert "simper/loss" in row and "innerpo/loss" in row
    assert row["loss"] == pytest.approx(row["simper/loss"] + 0.5 * row["innerpo/loss"], rel=1e-5)
