"""`innerpo sweep` end to end on tiny-random: idempotent re-runs, failing and killed
cells recorded while the others finish, worker processes and submitit's local executor."""

import json
import os
import shutil
import signal
import threading
import time

import psutil
import pytest

from innerpo.cli import main

TINY = {
    "model": {"base_model": "tiny-random", "lora_r": 4},
    "data": {"dataset": "synthetic", "max_train_pairs": 16, "batch_size": 4, "max_length": 64},
    "training": {"max_steps": 2, "eval_every": 0, "lr": 1e-3},
    "eval": {"max_pairs": 4},
}


@pytest.fixture
def sweep_file(tmp_path, monkeypatch):
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))

    def write(**values):
        import yaml

        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "sw"), "base": TINY, **values}))
        return str(path)

    return write


def _manifest(tmp_path):
    return json.loads((tmp_path / "sw" / "manifest.json").read_text())["cells"]


def _mtimes(tmp_path, names):
    return {n: (tmp_path / "sw" / n / "summary.json").stat().st_mtime_ns for n in names}


def _exit_code(argv):
    try:
        main(argv)
    except SystemExit as e:
        return e.code
    return 0


def test_sweep_runs_skips_finished_records_failures_and_reports(tmp_path, sweep_file, capsys):
    # 2 methods x 2 seeds train; beta = -1 is refused by every method: 4 refused cells.
    path = sweep_file(methods=["dpo", "ipo"], seeds=[1, 2], **{"method.beta": [0.1, -1.0]})
    # The check finds them before any cell trains: nothing runs, nothing is written.
    assert _exit_code(["sweep", path]) == 2
    err = capsys.readouterr().err
    assert "4 cell(s) refused; nothing was run or written" in err and "dpo_beta=-1_seed1" in err and "beta" in err
    assert not (tmp_path / "sw").exists()

    # --skip_refused trains the others and records the refused ones.
    assert _exit_code(["sweep", path, "--skip_refused"]) == 1
    assert "4 cell(s) refused and skipped" in capsys.readouterr().err
    cells = _manifest(tmp_path)
    good = [n for n in cells if "beta=0.1" in n]
    assert sorted(good) == ["dpo_beta=0.1_seed1", "dpo_beta=0.1_seed2", "ipo_beta=0.1_seed1", "ipo_beta=0.1_seed2"]
    assert all(cells[n]["state"] == "done" for n in good)
    bad = cells["ipo_beta=-1_seed2"]
    assert bad["state"] == "refused" and "beta" in bad["error"] and not (tmp_path / "sw" / "ipo_beta=-1_seed2").exists()
    assert cells["dpo_beta=0.1_seed1"]["reference"] == "computed and cached"
    assert cells["dpo_beta=0.1_seed2"]["reference"] == "reused from cache"

    # Second invocation: the 4 finished cells are skipped (not re-trained); the refused stay refused.
    before = _mtimes(tmp_path, good)
    assert _exit_code(["sweep", path, "--skip_refused"]) == 1
    assert "4 finished (skipped), 4 refused (skipped), 0 to run" in capsys.readouterr().out
    assert _mtimes(tmp_path, good) == before

    # A half-finished cell (no summary) runs again from scratch; the grid narrowed by a flag.
    half = tmp_path / "sw" / "dpo_beta=0.1_seed2"
    (half / "summary.json").unlink()
    (half / "stale.txt").write_text("from an interrupted attempt")
    assert _exit_code(["sweep", path, "--grid", "method.beta=0.1"]) == 0
    assert "3 finished (skipped), 1 to run" in capsys.readouterr().out
    assert (half / "summary.json").is_file() and not (half / "stale.txt").exists()

    # A finished cell whose settings changed stops the sweep before anything runs.
    assert _exit_code(["sweep", path, "--grid", "method.beta=0.1", "--training.max_steps=3"]) == 2
    assert "finished with other settings (training.max_steps: 2 -> 3)" in capsys.readouterr().err

    main(["report", str(tmp_path / "sw")])
    out = tmp_path / "sw" / "report"
    assert {"report.md", "report.csv", "report.json", "accuracy-synthetic.png", "gain-synthetic.png"} <= {
        p.name for p in out.iterdir()
    }
    md = (out / "report.md").read_text()
    assert "| dpo | 2 |" in md and "| ipo | 2 |" in md and "Paired difference vs `dpo`" in md


def test_killed_worker_is_recorded_and_rerun_completes(tmp_path, sweep_file, capsys):
    path = sweep_file(methods=["dpo"], seeds=[1, 2])
    killed = []

    def kill_first_worker():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            for child in psutil.Process().children(recursive=True):
                try:
                    cmd = " ".join(child.cmdline())
                except psutil.Error:
                    continue
                if "innerpo.experiments.runner" in cmd and "dpo_seed1" in cmd:
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    code = _exit_code(["sweep", path, "--workers", "1", "--threads", "1"])
    killer.join()
    assert killed and code == 1
    cells = _manifest(tmp_path)
    assert cells["dpo_seed1"]["state"] == "failed" and "signal 9" in cells["dpo_seed1"]["error"]
    assert cells["dpo_seed2"]["state"] == "done"
    before = _mtimes(tmp_path, ["dpo_seed2"])
    capsys.readouterr()
    assert _exit_code(["sweep", path, "--workers", "1", "--threads", "1"]) == 0
    assert "1 finished (skipped), 1 to run" in capsys.readouterr().out
    assert _manifest(tmp_path)["dpo_seed1"]["state"] == "done" and _mtimes(tmp_path, ["dpo_seed2"]) == before


def test_submitit_local_executor_runs_the_same_sweep(tmp_path, sweep_file, capsys):
    path = sweep_file(methods=["dpo", "ipo"], seeds=[1, 2])
    assert _exit_code(["sweep", path, "--executor", "submitit-local", "--threads", "1", "--time_min", "10"]) == 0
    cells = _manifest(tmp_path)
    assert len(cells) == 4 and all(c["state"] == "done" for c in cells.values())
    assert (tmp_path / "sw" / ".submitit").is_dir()
    capsys.readouterr()
    assert _exit_code(["sweep", path, "--executor", "submitit-local"]) == 0
    assert "4 finished (skipped), 0 to run" in capsys.readouterr().out


def test_a_killed_cell_continues_from_its_checkpoint_unless_its_settings_changed(tmp_path, sweep_file, capsys):
    from safetensors.torch import load_file

    from innerpo.train.checkpoint import checkpoint_dirs

    path = sweep_file(methods=["dpo"], seeds=[1], **{"training.max_steps": [4], "training.save_every": [2]})
    assert _exit_code(["sweep", path]) == 0
    (cell,) = [p for p in (tmp_path / "sw").iterdir() if p.is_dir() and p.name.startswith("dpo")]
    adapter = lambda: load_file(str(cell / "adapter" / "adapter_model.safetensors"))  # noqa: E731
    done = adapter()

    def kill_after_step_2():  # what a process killed between its checkpoints at steps 2 and 4 leaves
        for p in checkpoint_dirs(cell):
            if p.name != "step-2":
                shutil.rmtree(p)
        shutil.rmtree(cell / "adapter")
        for name in ("summary.json", "results.md", "pairs.parquet"):
            (cell / name).unlink(missing_ok=True)
        with (cell / "metrics.jsonl").open("a") as f:
            f.write('{"step": 3, "loss": 9.0}\n')

    kill_after_step_2()
    capsys.readouterr()
    assert _exit_code(["sweep", path]) == 0
    assert "0 finished (skipped), 1 to run" in capsys.readouterr().out
    assert "continuing from step-2 of an earlier attempt" in (cell / "log.txt").read_text()
    resumed = adapter()
    assert (
        max((resumed[k] - done[k]).abs().max().item() for k in done) <= 1e-6
    )  # ends where the uninterrupted cell ended
    assert '"loss": 9.0' not in (cell / "metrics.jsonl").read_text()

    # The same attempt under settings that change the result is not continued: the cell starts afresh.
    kill_after_step_2()
    assert _exit_code(["sweep", path, "--training.lr=0.002"]) == 0
    assert "continuing" not in (cell / "log.txt").read_text() and (cell / "summary.json").is_file()
