"""A few real steps on the bundled SmolLM2-135M-Instruct (marked slow)."""

import json

import pytest

from innerpo.cli import main

pytestmark = pytest.mark.slow


def test_dpo_trains_and_evaluates_on_the_bundled_model(tmp_path):
    run = tmp_path / "run"
    main(
        [
            "train",
            "dpo",
            "--data.batch_size=4",
            "--training.max_steps=3",
            "--training.eval_every=0",
            "--eval.max_pairs=16",
            f"--output_dir={run}",
        ]
    )
    summary = json.loads((run / "summary.json").read_text())
    in_domain = summary["shifts"]["in_domain"]
    assert in_domain["n_pairs"] == 16
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss"] == r["loss"] for r in rows)  # no NaN
    assert rows[-1]["rewards/margins"] > rows[0]["rewards/margins"] - 1e-6


def test_genies_alpaca_suite_from_shared_data(tmp_path, shared_genies):
    run = tmp_path / "run"
    main(
        [
            "train",
            "dpo",
            "--data.dataset=genies:alpaca_easy",
            f"--data.genies_dir={shared_genies}",
            "--data.batch_size=2",
            "--training.max_steps=1",
            "--training.eval_every=0",
            "--eval.suite=genies-alpaca",
            "--eval.max_pairs=4",
            f"--output_dir={run}",
        ]
    )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["suite"] == "genies-alpaca" and summary["shifts"]["difficulty_scaling"]["n_pairs"] == 4
