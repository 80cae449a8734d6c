"""`innerpo tune` refuses what it cannot run, before any trial, with exit code 2."""

import fcntl

import pytest

from innerpo import cli

FLAGS = ["--model.base_model=tiny-random", "--training.max_steps=2"]


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        cli.main(["tune", *args])
    return e.value.code, capsys.readouterr().err


def test_a_bad_space_file_names_file_and_key(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("method.beta: {low: 0, high: 1, log: true}\n")
    code, err = run(capsys, "dpo", "--space", str(space), "--output_dir", str(tmp_path / "t"), *FLAGS)
    assert code == 2 and f"{space}: method.beta" in err and "log scale" in err
    code, err = run(capsys, "nope", "--output_dir", str(tmp_path / "t"))
    assert code == 2 and "unknown method 'nope'" in err


def test_a_directory_of_another_study_or_one_in_use_is_refused(tmp_path, capsys):
    out = tmp_path / "t"
    from innerpo.tune.study import TuneSpec, save_spec

    save_spec(out, TuneSpec("ipo", {"training.lr": {"low": 1e-5, "high": 1e-3, "log": True}}))
    (out / "validation-suite.yaml").write_text("the other study's")
    code, err = run(capsys, "dpo", "--output_dir", str(out), *FLAGS)
    assert code == 2 and "holds a study with other method" in err
    assert (out / "validation-suite.yaml").read_text() == "the other study's"  # nothing of it overwritten
    other = tmp_path / "u"
    other.mkdir()
    with open(other / "driver.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, err = run(capsys, "dpo", "--output_dir", str(other), *FLAGS)
    assert code == 2 and "another `innerpo tune` is running" in err


def test_an_objective_the_suite_cannot_compute_is_refused(tmp_path, capsys):
    code, err = run(capsys, "dpo", "--objective", "shift:nowhere", "--output_dir", str(tmp_path / "t"), *FLAGS)
    assert code == 2 and "no shift 'nowhere'" in err


def test_a_spent_timeout_starts_no_trial_and_says_so(tmp_path, capsys):
    out = tmp_path / "t"
    cli.main(["tune", "dpo", "--timeout", "0.000001", "--output_dir", str(out), *FLAGS])
    printed = capsys.readouterr().out
    assert "trials: none" in printed and "no complete coherent trial yet" in printed
    assert "No trials yet." in (out / "trials.md").read_text() and not (out / "best.yaml").exists()


def test_a_grid_needs_choices_and_at_most_its_size_in_trials(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("training.lr: {low: 1.0e-4, high: 1.0e-3, log: true}\n")
    code, err = run(
        capsys, "dpo", "--sampler", "grid", "--space", str(space), "--output_dir", str(tmp_path / "t"), *FLAGS
    )
    assert code == 2 and "training.lr is a range" in err
    space.write_text("training.lr: {choices: [1.0e-4, 2.0e-4]}\nmethod.beta: {choices: [0.1, 0.2, 0.4]}\n")
    flags = ["--sampler", "grid", "--space", str(space), "--output_dir", str(tmp_path / "t"), *FLAGS]
    code, err = run(capsys, "dpo", "--trials", "7", *flags)
    assert code == 2 and "the grid has 6 points" in err
    assert not (tmp_path / "t").exists()


def test_a_worker_process_that_fails_is_reported_and_fails_the_command(tmp_path, capsys, monkeypatch):
    from innerpo.tune import workers

    broken = tmp_path / "no-study"  # no spec: each worker process stops with an error at start
    broken.mkdir()
    assert workers.run_local(broken, 2, trials=1, deadline=None, threads=1) == [0, 1]
    assert "Traceback" in (broken / "workers" / "worker-1.log").read_text()

    monkeypatch.setattr(workers, "run_local", lambda *a: [1])
    out = tmp_path / "t"
    code, err = run(capsys, "dpo", "--workers", "2", "--output_dir", str(out), *FLAGS)
    assert code == 1 and "worker(s) 1 exited with an error" in err and str(out / "workers") in err
    assert (out / "trials.md").exists()  # what the study holds is still written


def test_a_trial_killed_before_or_after_drawing_its_values_is_marked_interrupted(tmp_path):
    """Killed between ask and suggest: nothing to retry (the sampler draws afresh); killed after:
    its values are queued again."""
    import optuna

    from innerpo.tune.study import TuneSpec, open_study, save_spec
    from innerpo.tune.workers import recover_interrupted

    out = tmp_path / "t"
    save_spec(out, TuneSpec("dpo", {"training.lr": {"low": 1e-5, "high": 1e-3, "log": True}}))
    study = open_study(out, TuneSpec("dpo", {"training.lr": {"low": 1e-5, "high": 1e-3, "log": True}}))
    study.ask()  # no values yet
    drawn = study.ask()
    lr = drawn.suggest_float("training.lr", 1e-5, 1e-3, log=True)
    assert recover_interrupted(out) == 2
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials[:2]] == [optuna.trial.TrialState.FAIL] * 2
    assert all(t.user_attrs["interrupted"] for t in trials[:2])
    queued = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    fixed = [(t.user_attrs["retry_of"], t.system_attrs["fixed_params"]) for t in queued]  # optuna's enqueue
    assert fixed == [(1, {"training.lr": lr})]
