"""End to end through the command line, on tiny-random (seconds)."""

import argparse
import json
import re

import pandas as pd
import pytest
import tyro

from innerpo.cli import ROOMS, main
from innerpo.data import synthetic
from innerpo.flags import RENAMED, translate
from innerpo.train.config import preset_config
from innerpo.train.run_dir import save_config

TINY = [
    "--model.base_model=tiny-random",
    "--model.lora_r=4",
    "--data.batch_size=4",
    "--data.max_train_pairs=32",
    "--eval.max_pairs=12",
    "--training.eval_every=2",
    "--training.eval_pairs=8",
]


def test_train_then_eval_reloads_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", "dpo", *TINY, "--training.max_steps=3", "--training.lr=1e-2", f"--output_dir={run}"])
    printed = capsys.readouterr().out
    assert "Preference accuracy" in printed and "change (pp)" in printed
    summary = json.loads((run / "summary.json").read_text())
    assert summary["suite"] == "synthetic"
    assert set(summary["shifts"]) == set(synthetic.SHIFTS)
    for s in summary["shifts"].values():
        assert s["n_pairs"] == 12 and 0 <= s["base_accuracy"] <= 1 and 0 <= s["adapter_accuracy"] <= 1
    assert (run / "results.md").read_text().count("|") > 10
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3]
    assert {"rewards/chosen", "rewards/margins", "rewards/accuracies", "logps/chosen", "lr", "grad_norm"} <= set(
        train_rows[0]
    )
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [0, 2, 3]

    # Per-pair results agree with the summary: accuracy is the mean of the correct flags.
    frame = pd.read_parquet(run / "pairs.parquet")
    assert len(frame) == 12 * len(synthetic.SHIFTS) and frame["pair_id"].str.len().eq(16).all()
    for name, s in summary["shifts"].items():
        rows = frame[frame["shift"] == name]
        assert rows["adapter_correct"].mean() == pytest.approx(s["adapter_accuracy"])
        assert rows["base_correct"].mean() == pytest.approx(s["base_accuracy"])
        nll = -rows["adapter_chosen_logp"].sum() / rows["chosen_tokens"].sum()
        assert nll == pytest.approx(s["adapter_nll"], rel=1e-5)

    # A fresh process-equivalent: eval reloads adapter, config and tokenizer settings, and
    # writes beside the training-time results, never over them.
    before = (run / "summary.json").read_bytes()
    main(["eval", str(run)])
    assert (run / "summary.json").read_bytes() == before
    again = json.loads((run / "eval-synthetic" / "summary.json").read_text())
    assert pd.read_parquet(run / "eval-synthetic" / "pairs.parquet")["pair_id"].tolist() == frame["pair_id"].tolist()
    for name, s in summary["shifts"].items():
        assert again["shifts"][name]["adapter_accuracy"] == pytest.approx(s["adapter_accuracy"])
        assert again["shifts"][name]["adapter_nll"] == pytest.approx(s["adapter_nll"], rel=1e-5)


def test_config_file_and_flags_precedence(tmp_path):
    from innerpo.train.run_dir import load_config

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("training: {lr: 0.002, max_steps: 1}\nmethod: {beta: 0.3}\n")
    run = tmp_path / "run"
    main(
        [
            "train",
            "dpo",
            *TINY,
            f"--config={cfg_file}",
            "--method.beta=0.2",
            "--training.eval_every=0",
            f"--output_dir={run}",
            "--eval.suite=synthetic",
            "--eval.max_pairs=2",
        ]
    )
    saved = load_config(run)
    assert saved.training.lr == 0.002 and saved.method.beta == 0.2 and saved.training.max_steps == 1


def test_help_at_every_level(capsys):
    main(["--help"])
    assert "train NAME" in capsys.readouterr().out
    for args in (["train", "--help"], ["train", "dpo", "--help"], ["eval", "--help"], ["data", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0
    assert "--model.base_model" in capsys.readouterr().out


def test_data_list_and_show(capsys):
    main(["data", "list"])
    out = capsys.readouterr().out
    assert "genies-alpaca" in out and "synthetic:in_domain" in out
    main(["data", "show", "synthetic:in_domain", "--n=2"])
    assert out != capsys.readouterr().out


class Parsed(Exception):
    """Raised with what a command's own parser made of its arguments (so nothing runs)."""


# (command, old spelling, new spelling): the table, and flags with dashes inside their names
SPELLINGS = [(cmd, old, new) for cmd, table in RENAMED.items() for old, new in table.items()] + [
    ("tune", "--startup-trials", "--startup_trials"),
    ("tune", "--validation-suite", "--validation_suite"),
    ("train", "--training.max-steps", "--training.max_steps"),
    ("star", "--star.few-shot", "--star.few_shot"),
]
POSITIONAL = {
    "train": ["dpo"],
    "tune": ["dpo"],
    "report": ["runs"],
    "data": ["show", "synthetic:in_domain"],
    "sweep": [],
    "star": [],
}


def parse(monkeypatch, tmp_path, command, flags):
    """cli.main on `command` with `flags`, stopped where its parser returns: the parsed value."""

    def stop(result):
        raise Parsed(result)

    if command in ROOMS:
        parse_known = argparse.ArgumentParser.parse_known_args
        monkeypatch.setattr(
            argparse.ArgumentParser, "parse_known_args", lambda self, *a, **k: stop(parse_known(self, *a, **k))
        )
    else:
        cli = tyro.cli
        monkeypatch.setattr(tyro, "cli", lambda *a, **k: stop(cli(*a, **k)))
    if command == "eval":
        save_config(tmp_path, preset_config("dpo"))
    with pytest.raises(Parsed) as e:
        main([command, *POSITIONAL.get(command, [str(tmp_path)]), *flags])
    return e.value.args[0]


@pytest.mark.parametrize("command, old, new", SPELLINGS)
@pytest.mark.parametrize("form", ["--flag=V", "--flag V"])
def test_old_spellings_work_with_a_deprecation_line(monkeypatch, tmp_path, capsys, command, old, new, form):
    value = "7"

    def flags(flag):
        return [f"{flag}={value}"] if form == "--flag=V" else [flag, value]

    def read(parsed, flag):
        parsed = parsed[0] if command in ROOMS else parsed
        for part in flag[2:].split("."):
            parsed = getattr(parsed, part)
        return str(parsed)

    assert read(parse(monkeypatch, tmp_path, command, flags(new)), new) == value
    assert "deprecated" not in capsys.readouterr().err
    assert read(parse(monkeypatch, tmp_path, command, flags(old)), new) == value
    assert f"innerpo {command}: {old} is deprecated; use {new}\n" in capsys.readouterr().err


def test_translation_leaves_values_and_what_follows_a_bare_double_dash():
    args = ["--methods", "dpo", "--grid", "training.lr=1e-4,5e-5", "--executor", "submitit-local", "--", "--out"]
    assert translate("sweep", args) == args


@pytest.mark.parametrize("command", ["train dpo", "eval", "star", "data show", "sweep", "tune", "report"])
def test_help_shows_only_current_spellings(monkeypatch, capsys, command):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as e:
        main([*command.split(), "--help"])
    assert e.value.code == 0
    shown = set(re.findall(r"--[A-Za-z][\w.-]*", capsys.readouterr().out))
    assert shown and not {flag for flag in shown if "-" in flag[2:]}
    assert not shown & set(RENAMED.get(command.split()[0], {}))
    if command in ("train dpo", "star", "sweep", "tune", "report"):
        assert "--output_dir" in shown
