"""A STaR sweep end to end: 2 methods × 2 seeds on tiny-random from a hand-made train.jsonl
(--star.preload), finished cells skipped on a re-run, and `innerpo report` on it."""

import csv
import json

import pytest
import yaml

from innerpo.cli import main

PAIRS = [
    ("What is 12 + 3?", "12 + 3 = 15. The answer is (B).", "12 + 3 = 14. The answer is (A)."),
    ("What is 40 + 7?", "40 + 7 = 47. The answer is (C).", "40 + 7 = 48. The answer is (D)."),
    ("What is 25 + 5?", "25 + 5 = 30. The answer is (A).", "25 + 5 = 20. The answer is (B)."),
    ("What is 61 + 9?", "61 + 9 = 70. The answer is (D).", "61 + 9 = 60. The answer is (C)."),
]


def _code(argv):
    try:
        main(argv)
    except SystemExit as e:
        return e.code
    return 0


@pytest.fixture
def star_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n" for p, c, r in PAIRS))
    star = {
        "preload": str(train),
        "iterations": 1,
        "num_train_questions": 4,
        "num_eval_questions": 4,
        "eval_sets": ["synthetic:add2"],
        "eval_samples": 2,
        "few_shot": 0,
        "max_new_tokens": 6,
        "steps": 2,
    }
    sweep = {
        "command": "star",
        "output_dir": str(tmp_path / "sw"),
        "methods": ["dpo", "hs-none-innerpo"],
        "seeds": [1, 2],
        "base": {
            "star": star,
            "model": {"base_model": "tiny-random", "lora_r": 4},
            "data": {"batch_size": 2, "max_length": 128},
            "training": {"lr": 1e-3},
        },
    }
    path = tmp_path / "star.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_star_sweep_runs_and_reports(tmp_path, star_sweep, capsys):
    sw = tmp_path / "sw"
    assert _code(["sweep", str(star_sweep), "--check"]) == 0
    assert "4 cells: 4 run" in capsys.readouterr().out
    assert _code(["sweep", str(star_sweep)]) == 0
    cells = json.loads((sw / "manifest.json").read_text())["cells"]
    names = ["dpo_seed1", "hs-none-innerpo_seed1", "dpo_seed2", "hs-none-innerpo_seed2"]
    assert list(cells) == names and all(c["state"] == "done" for c in cells.values())
    for name in names:
        config = json.loads((sw / name / "star_config.json").read_text())
        assert config["star"]["seed"] == int(name[-1]) and config["star"]["method"] == name.split("_")[0]
        summary = json.loads((sw / name / "summary.json").read_text())
        assert [r["iteration"] for r in summary] == [0, 1] and list(summary[1]["sets"]) == ["in_domain", "add2"]
    trained = yaml.safe_load((sw / "hs-none-innerpo_seed2" / "iter-1" / "train" / "config.yaml").read_text())
    assert trained["method"]["hidden_loss"] == "innerpo" and trained["training"]["max_steps"] == 2

    # a re-run finds every cell finished: nothing runs again
    before = {n: (sw / n / "summary.json").stat().st_mtime_ns for n in names}
    assert _code(["sweep", str(star_sweep)]) == 0
    assert "4 finished (skipped), 0 to run" in capsys.readouterr().out
    assert before == {n: (sw / n / "summary.json").stat().st_mtime_ns for n in names}

    assert _code(["report", str(sw), "--output_dir", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "star-report.md").read_text()
    assert "dpo (2 seeds), hs-none-innerpo (2 seeds)" in text
    assert "## in_domain" in text and "## add2" in text and "### maj@2 accuracy (4 questions)" in text
    assert "| hs-none-innerpo − dpo |" in text
    rows = list(csv.DictReader((tmp_path / "rep" / "star-report.csv").open()))
    assert {(r["variant"], r["set"], r["iteration"]) for r in rows} >= {
        (v, s, i) for v in ("dpo", "hs-none-innerpo") for s in ("in_domain", "add2") for i in ("0", "1")
    }
    # the mean over seeds and questions, recomputed from the saved per-question rows
    row = next(
        r for r in rows if (r["variant"], r["set"], r["iteration"], r["score"]) == ("dpo", "add2", "1", "rationale")
    )
    values = [
        json.loads(line)["correct"]
        for seed in (1, 2)
        for line in (sw / f"dpo_seed{seed}" / "iter-1" / "eval-add2.jsonl").read_text().splitlines()
    ]
    assert float(row["mean"]) == pytest.approx(sum(values) / len(values)) and row["seeds"] == "2"
    assert float(row["ci_low"]) <= float(row["mean"]) <= float(row["ci_high"])
    assert (tmp_path / "rep" / "star-add2.png").stat().st_size > 1000
    # iteration 0 is the same starting model: the paired difference there is exactly zero
    zero = next(
        r for r in rows if r["variant"] == "hs-none-innerpo" and r["iteration"] == "0" and r["score"] == "rationale"
    )
    assert float(zero["diff"]) == 0.0


def test_star_sweep_refuses_a_datasets_axis_and_an_unknown_method(tmp_path, star_sweep, capsys):
    values = yaml.safe_load(star_sweep.read_text())
    for change, message in (
        ({"datasets": ["synthetic"]}, "a STaR sweep has no datasets axis"),
        ({"methods": ["sft", "no-such-method"]}, "unknown method 'no-such-method'"),
        ({"command": "tune"}, "command must be one of train, star"),
    ):
        star_sweep.write_text(yaml.safe_dump({**values, **change}))
        assert _code(["sweep", str(star_sweep), "--check"]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "sw").exists()
