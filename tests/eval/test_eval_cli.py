"""`innerpo eval` never overwrites: a directory per suite and differing settings; bad input leaves nothing."""

import json
import os

import pandas as pd
import pytest

from innerpo.cli import main


def test_eval_names_its_directory_and_keeps_training_results(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    main(
        [
            "train",
            "dpo",
            "--model.base_model=tiny-random",
            "--model.lora_r=4",
            "--data.max_train_pairs=8",
            "--data.batch_size=4",
            "--training.max_steps=1",
            "--training.eval_every=0",
            "--eval.max_pairs=4",
            "--eval.samples_per_shift=1",
            "--eval.max_new_tokens=4",
            f"--output_dir={run}",
        ]
    )
    assert {"summary.json", "results.md", "pairs.parquet", "samples.md"} <= set(os.listdir(run))
    before = {f: (run / f).read_bytes() for f in ("summary.json", "results.md", "pairs.parquet", "samples.md")}
    capsys.readouterr()

    main(["eval", str(run), "--eval.max_pairs=2"])
    out = run / "eval-synthetic-max_pairs=2"
    summary = json.loads((out / "summary.json").read_text())
    assert all(s["n_pairs"] == 2 for s in summary["shifts"].values()) and (out / "samples.md").is_file()
    # calibration beside accuracy: summary.json (from the per-pair probabilities), results.md
    frame = pd.read_parquet(out / "pairs.parquet")
    for name, s in summary["shifts"].items():
        for v in ("adapter", "base"):
            p = frame.loc[frame["shift"] == name, f"{v}_p_chosen"].to_numpy()
            assert s[f"{v}_p_chosen"] == pytest.approx(p.mean())
            assert s[f"{v}_brier"] == pytest.approx(((1 - p) ** 2).mean())
            assert 0 <= s[f"{v}_rms_calibration_error"] <= 1 and s[f"{v}_rms_calibration_error_genies"] is None
    assert "## Calibration" in (out / "results.md").read_text()
    main(["eval", str(run), "--eval.suite=auto", "--eval.name=again"])
    assert json.loads((run / "eval-again" / "summary.json").read_text())["suite"] == "synthetic"
    assert {f: (run / f).read_bytes() for f in before} == before  # training-time results untouched

    listing = sorted(os.listdir(run))
    with pytest.raises(SystemExit) as e:
        main(["eval", str(run), "--eval.suite=no-such-suite"])
    assert e.value.code == 2 and "unknown eval suite" in capsys.readouterr().err
    assert sorted(os.listdir(run)) == listing
