"""`innerpo report` on STaR run directories written by hand: means over seeds and questions,
the crossed bootstrap of report.stats, paired differences, unfinished runs left out."""

import csv
import json

import numpy as np
import pytest

from innerpo.cli import main
from innerpo.report.stats import mean_ci, paired_difference

# (variant label, seed) -> per iteration, per question: greedy rationale right
CORRECT = {
    ("sft", 1): {0: [1, 0, 1], 1: [1, 1, 1]},
    ("sft", 2): {0: [1, 1, 0], 1: [1, 1, 0]},
    ("dpo", 1): {0: [0, 0, 1], 1: [1, 0, 0]},
    ("dpo", 2): {0: [1, 0, 0], 1: [0, 0, 0]},
}


def _run(root, label, seed, iterations=1, finished=True):
    d = root / f"{label}_seed{seed}"
    star = {"seed": seed, "iterations": iterations, "strategy": label, "method": None, "eval_samples": 2}
    d.mkdir(parents=True)
    (d / "star_config.json").write_text(json.dumps({"star": star, "output_dir": str(d)}))
    rows = []
    for it in range(iterations + 1 if finished else 1):
        (d / f"iter-{it}").mkdir()
        correct = CORRECT.get((label, seed), {0: [0, 0, 0]})[it]
        lines = [
            {"qid": f"q{i}", "correct": bool(c), "scores": {"pass@1": c / 2, "maj@2": float(c)}}
            for i, c in enumerate(correct)
        ]
        (d / f"iter-{it}" / "eval-in_domain.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        rows.append({"iteration": it, "sets": {"in_domain": {}}})
    (d / "summary.json").write_text(json.dumps(rows))


def test_star_report_means_intervals_and_paired_differences(tmp_path, capsys):
    for label, seed in CORRECT:
        _run(tmp_path / "runs", label, seed)
    _run(tmp_path / "runs", "sft", 3, finished=False)  # unfinished: left out, counted
    main(["report", str(tmp_path / "runs"), "--output_dir", str(tmp_path / "rep"), "--baseline", "dpo"])
    rows = {
        (r["variant"], r["iteration"], r["score"]): r
        for r in csv.DictReader((tmp_path / "rep" / "star-report.csv").open())
    }
    sft0 = rows[("sft", "0", "rationale")]
    assert float(sft0["mean"]) == pytest.approx(4 / 6) and sft0["seeds"] == "2" and sft0["questions"] == "3"
    assert sft0["resampled"] == "seeds and questions"
    expected = mean_ci(np.array([CORRECT[("sft", s)][0] for s in (1, 2)], dtype=float))
    assert (float(sft0["ci_low"]), float(sft0["ci_high"])) == pytest.approx((expected.low, expected.high))
    # sft − dpo at iteration 1: means 5/6 − 1/6 = 4/6, seeds paired (both have seeds 1 and 2)
    d = rows[("sft", "1", "rationale")]
    a = np.array([CORRECT[("sft", s)][1] for s in (1, 2)], dtype=float)
    b = np.array([CORRECT[("dpo", s)][1] for s in (1, 2)], dtype=float)
    ref = paired_difference(a, b, seeds_match=True)
    assert float(d["diff"]) == pytest.approx(4 / 6) and d["baseline"] == "dpo"
    assert (float(d["diff_ci_low"]), float(d["diff_ci_high"])) == pytest.approx((ref.low, ref.high))
    assert float(rows[("sft", "1", "pass@1")]["mean"]) == pytest.approx(5 / 12)
    assert rows[("dpo", "1", "rationale")]["diff"] == ""  # the baseline itself
    text = (tmp_path / "rep" / "star-report.md").read_text()
    assert "1 unfinished STaR run(s) left out." in text and "| sft − dpo |" in text and "+66.7 [" in text


def test_a_broken_eval_row_names_file_and_line(tmp_path, capsys):
    _run(tmp_path / "runs", "sft", 1)
    bad = tmp_path / "runs" / "sft_seed1" / "iter-1" / "eval-in_domain.jsonl"
    bad.write_text(bad.read_text() + '{"qid": "q9"}\n')
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "runs"), "--output_dir", str(tmp_path / "rep")])
    assert e.value.code == 2
    assert "eval-in_domain.jsonl, line 4: not a held-out question row" in capsys.readouterr().err


def test_star_report_names_the_environments_recorded_in_each_run(tmp_path):
    entry = {"innerpo": "0.1", "commit": "abc", "dirty": False, "python": "3.11.9", "packages": {"torch": "2.13.0"}}
    for label, seed in CORRECT:
        _run(tmp_path / "runs", label, seed)
        train = tmp_path / "runs" / f"{label}_seed{seed}" / "iter-1" / "train"
        train.mkdir()
        machine = "box B" if (label, seed) == ("dpo", 2) else "box A"
        (train / "environment.json").write_text(json.dumps([{**entry, "machine": machine, "accelerator": None}]))
    main(["report", str(tmp_path / "runs"), "--output_dir", str(tmp_path / "rep")])
    text = (tmp_path / "rep" / "star-report.md").read_text()
    assert "**The 4 runs were not all made in one recorded environment**" in text
    assert "- 3 run(s):" in text and "box A" in text and "- 1 run(s):" in text and "dpo_seed2" in text
