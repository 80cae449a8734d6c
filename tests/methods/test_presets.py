"""Every preset through the command line on tiny-random: trains, is listed, combines,
skips the reference when it is reference-free, and refuses bad settings up front.

Runs use a 12-pair JSONL file and a one-shift YAML suite in tmp_path (as in
tests/train/test_loop.py), 2 optimizer steps of 2 pairs, and the reference cache under
tmp_path.
"""

import json
import math
import re

import pytest

from innerpo.cli import main
from innerpo.methods.build import build_loss, build_objective
from innerpo.methods.config import MethodConfig
from innerpo.methods.presets import PRESETS
from innerpo.methods.registry import LOSSES, entry
from innerpo.train.config import preset_config

ALL_NAMES = {
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


def train_rows(run):
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def test_presets_cover_every_loss_name():
    assert ALL_NAMES <= set(PRESETS)  # other presets (hidden-state methods) may join them
    for name in ALL_NAMES:
        preset = PRESETS[name]
        assert preset_config(name).method.losses == preset.method["losses"]
        assert "arXiv:" in preset.description, name


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
def test_every_preset_trains_two_steps_and_evaluates(name, tiny_args, tmp_path):
    run = tmp_path / "run"
    main(["train", name, *tiny_args, f"--output_dir={run}"])
    rows = train_rows(run)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in rows)
    assert rows[0]["grad_norm"] > 0, "the adapter must receive a gradient"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["shifts"]["in_domain"]["n_pairs"] == 4
    assert (run / "adapter" / "adapter_config.json").is_file()


def test_help_lists_every_name_with_its_paper(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    # Each entry: "• name" then its description, possibly wrapped onto following lines.
    entries = {chunk.split()[0]: " ".join(chunk.split()[1:]) for chunk in out.split("•")[1:]}
    for name in PRESETS:
        assert name in entries, f"{name} missing from innerpo train --help"
        if name in ALL_NAMES:
            arxiv = PRESETS[name].description.split("arXiv:")[1][:10]
            assert arxiv in entries[name].replace("│", ""), f"{name}: {entries[name]!r}"


def test_losses_combine_from_the_command_line(tiny_args, tmp_path):
    run = tmp_path / "run"
    main(
        [
            "train",
            "dpo",
            *tiny_args,
            "--method.losses",
            "dpo",
            "sft",
            "--method.weights",
            "1.0",
            "0.2",
            f"--output_dir={run}",
        ]
    )
    for row in train_rows(run):
        assert row["loss"] == pytest.approx(row["dpo/loss"] + 0.2 * row["sft/loss"], rel=1e-5)
        assert row["sft/loss"] > 0


REFERENCE_FREE = sorted(
    n
    for n in ALL_NAMES
    if not any(build_loss(l, preset_config(n).method).needs_reference for l in PRESETS[n].method["losses"])
)


def test_reference_free_set_is_the_expected_one():
    assert REFERENCE_FREE == ["cpo", "orpo", "sft", "simper", "simpo"]


@pytest.mark.parametrize("name", REFERENCE_FREE)
def test_reference_free_presets_never_run_the_reference(name, tiny_args, tmp_path, monkeypatch):
    from innerpo.methods.base import OutputMethod
    from innerpo.train import loop

    def refuse(*a, **k):
        raise AssertionError("reference requested by a reference-free method")

    monkeypatch.setattr(OutputMethod, "reference", refuse)
    monkeypatch.setattr(OutputMethod, "reference_rows", refuse)
    monkeypatch.setattr(loop, "reference_table", refuse)
    run = tmp_path / "run"
    main(["train", name, *tiny_args, f"--output_dir={run}"])
    assert [r["step"] for r in train_rows(run)] == [1, 2]


def test_a_reference_method_does_use_the_reference(tiny_args, tmp_path, monkeypatch):
    """The spy above would catch a reference pass: dpo goes through it (via the cache)."""
    from innerpo.train import loop

    calls = []
    real = loop.reference_table
    monkeypatch.setattr(loop, "reference_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    main(["train", "dpo", *tiny_args, f"--output_dir={tmp_path / 'run'}"])
    assert calls == [1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["dpo", "--method.beta=-0.1"], r"beta must be a positive finite number, got -0.1; try --method.beta"),
        (["sft", "--method.beta=0"], r"--method.beta=0.0 is set, but the chosen method \(sft\) does not read it"),
        (["dpo", "--method.label_smoothing=0.5"], r"label_smoothing must be in \[0, 0.5\)"),
        (["robust", "--method.label_smoothing=-0.1"], r"label_smoothing must be in \[0, 0.5\)"),
        (
            ["exo", "--method.label_smoothing=0"],
            r"exo.*label_smoothing must be in \(0, 0.5\).*--method.label_smoothing=1e-3",
        ),
        (
            ["ipo", "--method.label_smoothing=0.1"],
            r"--method.label_smoothing=0.1 is set, but the chosen method \(ipo\) does not read it; it is read by: dpo, robust",
        ),
        (["simpo", "--method.simpo_gamma=-1"], r"simpo_gamma must be a finite margin >= 0"),
        (["kto", "--method.kto_desirable_weight=0"], r"kto_desirable_weight must be a finite number > 0"),
        (["dpo", "--method.losses", "dpo", "sft", "--method.weights", "1.0"], r"2 losses but 1 weights"),
    ],
)
def test_bad_hyperparameters_are_refused_before_any_run_directory(args, message, tiny_args, tmp_path, capsys):
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as e:  # the CLI prints input errors and exits with 2
        main(["train", *args, *tiny_args, f"--output_dir={run}"])
    assert e.value.code == 2 and re.search(message, capsys.readouterr().err)
    assert not run.exists()


def test_label_smoothing_readers_are_the_losses_that_store_it():
    """The declared readers of label_smoothing (the refusal's source) are the losses that keep it."""
    for name in LOSSES:
        if name in ("innerpo", "prefvec", "mse", "reroute", "rank"):
            continue
        loss = build_loss(name, MethodConfig(losses=[name], label_smoothing=0.1))
        reads = "label_smoothing" in entry(name).reads(MethodConfig(losses=[name]))
        assert hasattr(loss, "label_smoothing") == reads, name


def test_label_smoothing_is_accepted_when_some_loss_reads_it():
    combined = build_objective(MethodConfig(losses=["sft", "dpo"], weights=[1.0, 1.0], label_smoothing=0.1))
    assert combined.components["dpo"].label_smoothing == 0.1
