"""Trackers through accelerate: TensorBoard event files that tensorboard's reader parses,
a W&B offline run directory, run names from the settings that differ from the preset,
and a clear error naming the extra when a tracker's package is missing."""

import dataclasses
import json
import time

import pytest

from innerpo.cli import main
from innerpo.train import trackers
from innerpo.train.config import preset_config

from .runs import held_out_run_args


def run_args(tmp_path, *extra):
    return held_out_run_args(tmp_path, tmp_path / "run", 8, "--data.batch_size=2", "--training.max_steps=2", *extra)


def test_run_name_lists_what_differs_from_the_preset():
    cfg = preset_config("dpo")
    assert trackers.run_name(cfg) == "dpo"
    cfg = dataclasses.replace(
        cfg,
        training=dataclasses.replace(cfg.training, lr=1e-3, seed=3, save_every=5),
        data=dataclasses.replace(cfg.data, dataset="/data/prefs.jsonl"),
    )
    assert (
        trackers.run_name(cfg) == "dpo-dataset=prefs.jsonl-lr=0.001-seed=3"
    )  # save_every changes no result: not in the name


def test_report_to_accepts_commas_and_refuses_unknown_names():
    assert trackers.parse_trackers(["none"]) == []
    with pytest.raises(ValueError, match="unknown tracker 'mlflow'; choose from wandb, tensorboard, trackio"):
        trackers.parse_trackers(["tensorboard,mlflow"])


def test_a_missing_tracker_package_names_the_extra_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(trackers.AVAILABLE, "wandb", lambda: False)
    with pytest.raises(SystemExit) as exc:
        main(run_args(tmp_path, "--training.report_to=tensorboard,wandb"))
    assert exc.value.code == 2
    assert "pip install 'innerpo[wandb]'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_tensorboard_event_files_parse_with_every_logged_row(tmp_path, monkeypatch):
    pytest.importorskip(
        "tensorboard", reason="the tensorboard extra is not installed (pip install 'innerpo[tensorboard]')"
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    main(run_args(tmp_path, "--training.report_to=tensorboard"))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard" / "innerpo"), size_guidance={"tensors": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in events.Scalars("loss")] == [r["step"] for r in rows if "loss" in r] == [1, 2]
    assert [e.value for e in events.Scalars("loss")] == pytest.approx([r["loss"] for r in rows if "loss" in r])
    assert [e.step for e in events.Scalars("eval/accuracy")] == [0, 2]
    assert "final/in_domain/adapter_accuracy" in scalars
    assert any("final/results" in tag for tag in events.Tags()["tensors"])  # the tables, as text


def test_wandb_runs_offline_without_credentials(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the wandb extra is not installed (pip install 'innerpo[wandb]')")
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)  # restored (unset) after the test
    monkeypatch.setenv("WANDB_SILENT", "true")
    main(run_args(tmp_path, "--training.report_to=wandb", "--training.lr=0.001", "--training.tracker_group=sweep1"))
    (run_dir,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    (record,) = run_dir.glob("*.wandb")  # the offline run's record, for `wandb sync`
    # wandb's service process writes the record; on a busy machine its last flush can trail the
    # run's return by a moment, so wait (bounded) for the final summary to land.
    deadline = time.monotonic() + 60
    while b"final/in_domain/adapter_accuracy" not in (raw := record.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert b"dpo-base_model=tiny-random-lora_r=4" in raw and b"sweep1" in raw  # run name and group
    assert b"training.lr" in raw and b"rewards/margins" in raw and b"final/in_domain/adapter_accuracy" in raw


def test_trackio_logs_locally(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))  # read when trackio is first imported
    trackio_utils = pytest.importorskip(
        "trackio.utils", reason="the trackio extra is not installed (pip install 'innerpo[trackio]')"
    )
    if str(trackio_utils.TRACKIO_DIR) != str(tmp_path / "trackio"):
        pytest.skip("trackio was imported earlier with another TRACKIO_DIR")
    import sqlite3

    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    main(run_args(tmp_path, "--training.report_to=trackio", "--training.tracker_project=proj"))
    db = sqlite3.connect(tmp_path / "trackio" / "proj.db")
    logged = {step: json.loads(m) for step, m in db.execute("select step, metrics from metrics")}
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged[1]["loss"] == pytest.approx(next(r["loss"] for r in rows if r["step"] == 1))
    assert "final/in_domain/adapter_accuracy" in logged[2]
