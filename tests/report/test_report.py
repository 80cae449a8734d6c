"""`innerpo report` on hand-built run directories: known answers, and CIs that match an
independent bootstrap of the per-pair Parquet files."""

import json

import numpy as np
import pandas as pd
import pytest

from innerpo.cli import main
from innerpo.report.runs import load_runs

from .conftest import make_run

N = 80


def _sweep(tmp_path, flags, better_by=0.0):
    """dpo and hs-none-innerpo, 3 seeds each; innerpo wins `better_by` of dpo's lost pairs."""
    base = {"in_domain": flags(0.5, N), "harder": flags(0.5, N)}
    for seed in (1, 2, 3):
        dpo = {s: np.maximum(base[s], flags(0.3, N)) for s in base}
        make_run(tmp_path / "sw" / f"dpo_seed{seed}", "dpo", seed, dpo, base)
        inner = {s: np.maximum(dpo[s], flags(better_by, N)) if better_by else dpo[s] for s in base}
        make_run(tmp_path / "sw" / f"hs-none-innerpo_seed{seed}", "hs-none-innerpo", seed, inner, base)
    return tmp_path / "sw"


def _rows(out):
    return pd.read_csv(out / "report.csv")


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """One report (the default --output_dir) on a sweep where innerpo is better than dpo on some pairs, never worse."""
    rng = np.random.default_rng(0)
    sweep = _sweep(tmp_path_factory.mktemp("rep"), lambda p, n: (rng.random(n) < p).astype(int), better_by=0.3)
    main(["report", str(sweep)])
    return sweep, sweep / "report"


def test_report_writes_files_tables_and_plots(reported):
    sweep, out = reported
    for name in (
        "report.md",
        "report.csv",
        "report.json",
        "accuracy-synthetic.png",
        "gain-synthetic.png",
        "curves-synthetic.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "accuracy-synthetic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "| base | – |" in md and "| dpo | 3 |" in md and "| hs-none-innerpo | 3 |" in md
    assert "Paired difference vs `dpo`" in md and "in_domain (n=80)" in md
    assert "Base model `smollm2-135m-instruct`" in md and "`innerpo report " in md
    rows = _rows(out)
    inner = rows[(rows["method"] == "hs-none-innerpo")]
    # Better than dpo on some pairs and never worse, in every seed: the CI excludes 0, marked.
    assert (inner["diff_vs_baseline"] > 0).all() and inner["diff_vs_baseline_excludes_zero"].all()
    assert md.count(" *") >= 2
    assert set(rows["method"]) == {"base", "dpo", "hs-none-innerpo"}
    assert (rows.loc[rows["method"] == "dpo", "n_seeds"] == 3).all() and (rows["n_pairs"] == N).all()


def test_identical_methods_difference_is_zero_and_covers_zero(tmp_path, flags):
    sweep = _sweep(tmp_path, flags, better_by=0.0)
    main(["report", str(sweep), "--output_dir", str(tmp_path / "rep")])
    inner = _rows(tmp_path / "rep").query("method == 'hs-none-innerpo'")
    assert (inner["diff_vs_baseline"] == 0).all()
    assert (inner["diff_vs_baseline_low"] <= 0).all() and (inner["diff_vs_baseline_high"] >= 0).all()
    assert not inner["diff_vs_baseline_excludes_zero"].any()


def test_cis_match_an_independent_bootstrap_of_the_parquet_files(reported):
    sweep, out = reported
    rows = _rows(out).set_index(["method", "shift"])
    # Independent: read the Parquet files directly, resample seeds and pairs with numpy.
    rng = np.random.default_rng(123)
    for method in ("dpo", "hs-none-innerpo"):
        frames = [pd.read_parquet(sweep / f"{method}_seed{s}" / "pairs.parquet") for s in (1, 2, 3)]
        dpo = [pd.read_parquet(sweep / f"dpo_seed{s}" / "pairs.parquet") for s in (1, 2, 3)]
        for shift in ("in_domain", "harder"):
            a = np.stack(
                [f[f["shift"] == shift].sort_values("pair_id")["adapter_correct"].to_numpy(float) for f in frames]
            )
            b = np.stack(
                [f[f["shift"] == shift].sort_values("pair_id")["adapter_correct"].to_numpy(float) for f in dpo]
            )
            boots, diffs = [], []
            for _ in range(4000):
                si, pj = rng.integers(0, 3, 3), rng.integers(0, N, N)
                boots.append(a[si][:, pj].mean())
                diffs.append((a - b)[si][:, pj].mean())
            row = rows.loc[(method, shift)]
            assert row["accuracy"] == pytest.approx(a.mean())
            assert row["accuracy_low"] == pytest.approx(np.percentile(boots, 2.5), abs=0.012)
            assert row["accuracy_high"] == pytest.approx(np.percentile(boots, 97.5), abs=0.012)
            if method != "dpo":
                assert row["diff_vs_baseline_low"] == pytest.approx(np.percentile(diffs, 2.5), abs=0.012)
                assert row["diff_vs_baseline_high"] == pytest.approx(np.percentile(diffs, 97.5), abs=0.012)
    meta = json.loads((out / "report.json").read_text())
    assert "resamples seeds and pairs" in meta["method"] and len(meta["runs"]) == 6


def test_variant_labels_name_what_differs_and_baseline_must_be_unambiguous(tmp_path, flags, capsys):
    base = {"in_domain": flags(0.5, 20), "harder": flags(0.5, 20)}
    for lr in (1e-4, 5e-5):
        for seed in (1, 2):
            make_run(tmp_path / f"dpo-{lr}-{seed}", "dpo", seed, base, base, lr=lr)
    runs = load_runs([tmp_path])
    assert sorted({r.variant for r in runs}) == ["dpo lr=0.0001", "dpo lr=5e-05"]
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path)])
    assert exit_info.value.code == 2 and "matches several variants" in capsys.readouterr().err
    main(["report", str(tmp_path), "--baseline", "dpo lr=0.0001", "--output_dir", str(tmp_path / "rep")])
    assert "Paired difference vs `dpo lr=0.0001`" in (tmp_path / "rep" / "report.md").read_text()


def test_genies_normalised_generalization_hand_computed(tmp_path):
    """Trained on easy, evaluated on hard; a run trained on hard gives the ceiling:
    NG = (acc_hard(easy-trained) − acc_hard(base)) / acc_hard(hard-trained) (GENIES code)."""
    datasets = {"in_domain": "genies:alpaca_easy", "hard": "genies:alpaca_hard"}
    base = {"in_domain": [1, 0, 0, 0, 1, 0, 0, 0, 1, 0], "hard": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]}  # hard: 0.1
    easy = {"in_domain": [1] * 10, "hard": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]}  # hard: 0.3
    tuned = {"in_domain": [1] * 10, "hard": [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]}  # hard: 0.8
    make_run(
        tmp_path / "easy", "dpo", 1, easy, base, dataset="genies:alpaca_easy", suite="genies-alpaca", datasets=datasets
    )
    make_run(
        tmp_path / "hard", "dpo", 1, tuned, base, dataset="genies:alpaca_hard", suite="genies-alpaca", datasets=datasets
    )
    inner = {"in_domain": [1] * 10, "hard": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]}  # hard: 0.4
    make_run(
        tmp_path / "inner",
        "hs-none-innerpo",
        1,
        inner,
        base,
        dataset="genies:alpaca_easy",
        suite="genies-alpaca",
        datasets=datasets,
    )
    # `--baseline dpo` means the DPO run trained on the source, not the one trained on the target
    main(["report", str(tmp_path), "--output_dir", str(tmp_path / "rep")])
    rows = _rows(tmp_path / "rep").set_index(["method", "shift"])
    assert rows.loc[("hs-none-innerpo", "hard"), "diff_vs_baseline"] == pytest.approx(0.1)
    assert (rows["baseline"] == "dpo dataset=alpaca_easy").all()
    assert rows.loc[("dpo dataset=alpaca_easy", "hard"), "normalized_generalization"] == pytest.approx(
        (0.3 - 0.1) / 0.8
    )
    assert np.isnan(rows.loc[("dpo dataset=alpaca_hard", "hard"), "normalized_generalization"])
    assert "GENIES normalised generalization" in (tmp_path / "rep" / "report.md").read_text()


def test_no_runs_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path)])
    assert exit_info.value.code == 2 and "no finished runs" in capsys.readouterr().err


def test_calibration_is_averaged_over_seeds_and_differenced_against_the_baseline(tmp_path):
    """Known probabilities: mean p and Brier are per-pair means over seeds × pairs (the
    crossed bootstrap as accuracy), the Brier difference is paired, RMSCE averages the runs'."""
    base_p = {"in_domain": [0.5, 0.5, 0.5, 0.5], "harder": [0.5, 0.5, 0.5, 0.5]}
    dpo_p = {"in_domain": [0.9, 0.9, 0.9, 0.3], "harder": [0.6, 0.6, 0.6, 0.6]}
    inner_p = {"in_domain": [0.8, 0.8, 0.8, 0.4], "harder": [0.7, 0.7, 0.7, 0.7]}
    for seed in (1, 2):
        for method, p in (("dpo", dpo_p), ("hs-none-innerpo", inner_p)):
            correct = {s: [int(x > 0.5) for x in v] for s, v in p.items()}
            make_run(
                tmp_path / f"{method}_seed{seed}",
                method,
                seed,
                correct,
                {s: [0] * 4 for s in p},
                p_chosen={"adapter": p, "base": base_p},
            )
    main(["report", str(tmp_path), "--output_dir", str(tmp_path / "rep")])
    rows = _rows(tmp_path / "rep").set_index(["method", "shift"])
    # dpo in_domain: mean p = (3·0.9 + 0.3)/4 = 0.75; Brier = (3·0.01 + 0.49)/4 = 0.13
    assert rows.loc[("dpo", "in_domain"), "p_chosen"] == pytest.approx(0.75)
    assert rows.loc[("dpo", "in_domain"), "brier"] == pytest.approx(0.13)
    # innerpo in_domain: Brier = (3·0.04 + 0.36)/4 = 0.12, so 0.01 below dpo's on the same pairs
    inner = rows.loc[("hs-none-innerpo", "in_domain")]
    assert inner["brier"] == pytest.approx(0.12) and inner["brier_diff_vs_baseline"] == pytest.approx(-0.01)
    # identical seeds: nothing to resample but pairs; the difference is −0.03 on 3 pairs and +0.13 on one
    assert inner["brier_diff_vs_baseline_low"] <= -0.01 <= inner["brier_diff_vs_baseline_high"]
    # harder: every pair 0.7 vs 0.6, Brier 0.09 vs 0.16: the interval is the point
    harder = rows.loc[("hs-none-innerpo", "harder")]
    assert harder["brier_diff_vs_baseline_low"] == pytest.approx(-0.07)
    assert harder["brier_diff_vs_baseline_high"] == pytest.approx(-0.07)
    # RMSCE of dpo in_domain: bin [0.9, 1] 3 right at 0.9 (gap 0.1), bin [0.7, 0.8) 1 wrong at 0.7: √(¾·0.01 + ¼·0.49)
    assert rows.loc[("dpo", "in_domain"), "rms_calibration_error"] == pytest.approx(np.sqrt(0.0075 + 0.1225))
    assert rows.loc[("base", "in_domain"), "p_chosen"] == pytest.approx(0.5)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "### Calibration" in md and "Brier score, paired difference vs `dpo`" in md


def test_runs_made_in_different_environments_are_named(tmp_path, flags):
    from innerpo.train import environment

    sweep = _sweep(tmp_path, flags)
    main(["report", str(sweep)])
    assert "Environment of all 6 runs: not recorded" in (sweep / "report" / "report.md").read_text()
    runs = sorted(p for p in sweep.iterdir() if p.name != "report")
    entry = environment.describe()
    for i, run in enumerate(runs):
        packages = {**entry["packages"], "transformers": "9.9.9"} if i < 2 else entry["packages"]
        (run / environment.FILENAME).write_text(json.dumps([{**entry, "packages": packages}]))
    main(["report", str(sweep)])
    md = (sweep / "report" / "report.md").read_text()
    assert "**The 6 runs were not all made in one recorded environment**" in md
    assert "- 4 run(s): innerpo " in md and "- 2 run(s): innerpo " in md and "transformers 9.9.9" in md
    groups = json.loads((sweep / "report" / "report.json").read_text())["environments"]
    assert [len(g["runs"]) for g in groups] == [4, 2]
    for run in runs:
        (run / environment.FILENAME).write_text(json.dumps([entry]))
    main(["report", str(sweep)])
    assert f"Environment of all 6 runs: {environment.summary(entry)}." in (sweep / "report" / "report.md").read_text()
