"""End to end through the command line, on tiny-random (seconds)."""

import json

import pandas as pd
import pytest

from innerpo.cli import main
from innerpo.data import synthetic

TINY = ["--model.base_model=tiny-random", "--model.lora_r=4", "--data.batch_size=4", "--data.max_train_pairs=32", "--eval.max_pairs=12", "--training.eval_every=2", "--training.eval_pairs=8"]


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
    assert {"rewards/chosen", "rewards/margins", "rewards/accuracies", "logps/chosen", "lr", "grad_norm"} <= set(train_rows[0])
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
    main(["train", "dpo", *TINY, f"--config={cfg_file}", "--method.beta=0.2", "--training.eval_every=0", f"--output_dir={run}", "--eval.suite=synthetic", "--eval.max_pairs=2"])
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
