"""Studies on tiny-random: parallel workers, resume after a kill, pruning, the best config."""

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from innerpo import cli
from innerpo.tune import study as study_module
from innerpo.tune.study import load_spec, open_study

SHARED = [
    "--model.base_model=tiny-random",
    "--model.lora_r=4",
    "--data.max_train_pairs=16",
    "--data.max_length=64",
    "--training.max_steps=4",
    "--training.eval_every=2",
    "--training.eval_pairs=8",
    "--eval.max_pairs=8",
]


def tune(out, *extra):
    cli.main(["tune", "dpo", "--output_dir", str(out), "--startup_trials", "2", *extra, *SHARED])


def trials_of(out):
    return optuna.load_study(study_name=study_module.STUDY_NAME, storage=study_module.storage(out)).get_trials(
        deepcopy=False
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def six_trials(tmp_path_factory):
    """A 6-trial study with 2 worker processes (shared by the tests that read its products)."""
    out = tmp_path_factory.mktemp("tune") / "dpo"
    old = os.environ.get("INNERPO_CACHE")
    os.environ["INNERPO_CACHE"] = str(out.parent / "cache")
    try:
        t0 = time.time()
        tune(out, "--trials", "6", "--workers", "2", "--threads", "1")
        print(f"6 trials, 2 workers: {time.time() - t0:.0f} s")
    finally:
        if old is None:
            os.environ.pop("INNERPO_CACHE")
        else:
            os.environ["INNERPO_CACHE"] = old
    return out


def test_six_trials_with_two_workers_complete(six_trials):
    trials = trials_of(six_trials)
    assert len(trials) == 6 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    logs = [(six_trials / "workers" / f"worker-{i}.log").read_text() for i in (0, 1)]
    assert all("started" in log for log in logs)  # both workers ran trials
    table = pd.read_csv(six_trials / "trials.csv")
    assert list(table["number"]) == list(range(6)) and set(table["state"]) <= {"complete", "pruned"}
    for t in trials:  # each trial is an ordinary run directory, scored on the validation suite
        run = six_trials / "trials" / f"trial-{t.number:04d}"
        assert json.loads((run / "trial.json").read_text())["state"] == t.state.name.lower()
        assert (run / "config.yaml").is_file() and (run / "metrics.jsonl").is_file()
        if t.state == TrialState.COMPLETE:
            summary = json.loads((run / "summary.json").read_text())
            assert all(s["split"] == "validation" for s in summary["shifts"].values())
            ood = [s["adapter_accuracy"] for k, s in summary["shifts"].items() if k != "in_domain"]
            assert t.value == pytest.approx(sum(ood) / len(ood))
            brier = [s["adapter_brier"] for k, s in summary["shifts"].items() if k != "in_domain"]
            row = table[table["number"] == t.number].iloc[0]  # calibration beside the objective
            assert row["brier"] == pytest.approx(sum(brier) / len(brier)) and row["rms_calibration_error"] >= 0
    assert (six_trials / "history.png").stat().st_size > 0
    assert "importances" in json.loads((six_trials / "importances.json").read_text())


def test_the_best_config_trains_and_tests_on_the_real_suite(six_trials, tmp_path, monkeypatch):
    monkeypatch.setenv("INNERPO_CACHE", str(six_trials.parent / "cache"))
    best = six_trials / "best.yaml"
    study = open_study(six_trials, load_spec(six_trials))
    assert f"trial {study.best_trial.number}" in best.read_text()
    run = tmp_path / "run"
    cli.main(["train", "dpo", "--config", str(best), f"--output_dir={run}", "--training.max_steps=2"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["suite"] == "synthetic" and all(s["split"] == "test" for s in summary["shifts"].values())
    config = (run / "config.yaml").read_text()
    assert f"lr: {study.best_params['training.lr']}" in config and f"beta: {study.best_params['method.beta']}" in config


def test_a_pruned_trial_is_recorded_as_pruned_not_as_a_crash(tmp_path, cache, monkeypatch):
    # A real Optuna pruner that prunes at the first evaluation after an update.
    monkeypatch.setattr(
        study_module, "make_pruner", lambda name: optuna.pruners.ThresholdPruner(lower=1.1, n_warmup_steps=1)
    )
    out = tmp_path / "tune"
    tune(out, "--trials", "1")
    (trial,) = trials_of(out)
    assert trial.state == TrialState.PRUNED and trial.intermediate_values.keys() == {2}
    run = out / "trials" / "trial-0000"
    record = json.loads((run / "trial.json").read_text())
    assert record["state"] == "pruned" and "pruned at step 2" in record["note"]
    assert not (run / "error.json").exists() and not (run / "summary.json").exists()
    assert "| 0 | pruned |" in (out / "trials.md").read_text()
    assert not (out / "best.yaml").exists()


def test_incoherent_trials_are_infeasible_never_best_and_listed_with_their_reason(tmp_path, cache, capsys):
    # A threshold below any possible rise: every trial's coherence flag trips.
    out = tmp_path / "tune"
    tune(out, "--trials", "2", "--pruner", "none", "--eval.coherence_threshold=-100")
    trials = trials_of(out)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2  # scored, so TPE learns from them...
    assert all(t.constraints["coherence_excess"] > 90 for t in trials)  # ...as infeasible
    table = pd.read_csv(out / "trials.csv")
    assert list(table["state"]) == ["incoherent"] * 2 and (table["coherence_excess"] > 90).all()
    assert all(str(n).startswith("incoherent: coherence flag on") for n in table["note"])
    assert json.loads((out / "trials" / "trial-0000" / "trial.json").read_text())["state"] == "incoherent"
    assert not (out / "best.yaml").exists() and "no complete coherent trial yet" in capsys.readouterr().out


def test_a_killed_study_resumes_with_its_trials_kept(tmp_path, cache):
    out = tmp_path / "tune"
    cmd = [
        sys.executable,
        "-m",
        "innerpo.cli",
        "tune",
        "dpo",
        "--output_dir",
        str(out),
        "--trials",
        "3",
        "--startup_trials",
        "2",
        "--pruner",
        "none",
        *SHARED,
    ]
    proc = subprocess.Popen(
        cmd,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # kill it hard once trial 0 is done and trial 1 is under way
            try:
                seen = trials_of(out)
            except (KeyError, FileNotFoundError):  # the study is not created yet
                seen = []
            states = [t.state for t in seen]
            # trial 1 under way with its parameters drawn: a kill between ask and suggest leaves
            # nothing to queue again (the sampler then draws afresh), which a loaded CPU can hit
            if states == [TrialState.COMPLETE, TrialState.RUNNING] and seen[1].params:
                break
            time.sleep(0.3)
        else:
            pytest.fail("the study did not reach trial 1")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first = trials_of(out)
    assert [t.state for t in first] == [TrialState.COMPLETE, TrialState.RUNNING]
    tune(out, "--trials", "3", "--pruner", "none")  # the same command continues the study
    trials = trials_of(out)
    assert trials[0].value == first[0].value and trials[0].params == first[0].params  # kept, not re-run
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["interrupted"]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].params == first[1].params and retry[0].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3  # the interrupted trial used no budget
    assert "| 1 | interrupted |" in (out / "trials.md").read_text()


def test_the_submitit_executor_runs_workers_on_the_same_study(tmp_path, cache):
    # submitit's `debug` cluster runs the job array in this process; `slurm` is the same code
    # with the sweep's SLURM parameters (innerpo.experiments.executors.SubmititExecutor).
    out = tmp_path / "tune"
    tune(out, "--trials", "1", "--executor", "submitit-debug", "--pruner", "none")
    assert [t.state for t in trials_of(out)] == [TrialState.COMPLETE]
    assert (out / ".submitit").is_dir() and (out / "best.yaml").is_file()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_grid_study_tries_every_point_once(tmp_path, cache, capsys, workers):
    """One worker, or two sharing the grid: the three rates are each trained exactly once, no
    worker fails when the grid runs out, and a second command on the finished study adds nothing."""
    space = tmp_path / "lr.yaml"
    space.write_text("training.lr: {choices: [1.0e-4, 3.0e-4, 1.0e-3]}\n")
    out = tmp_path / "grid"
    flags = ["--sampler", "grid", "--space", str(space), "--pruner", "none", "--workers", workers, "--threads", "1"]
    tune(out, *flags)
    tune(out, *flags)
    assert "exited with an error" not in capsys.readouterr().err
    lrs = sorted(t.params["training.lr"] for t in trials_of(out))
    assert lrs == [1.0e-4, 3.0e-4, 1.0e-3]
    assert load_spec(out).sampler == "grid"
