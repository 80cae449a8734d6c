"""`innerpo sweep --check`: every cell resolved and validated without training or writing;
a refused cell stops a sweep before any cell trains; one sweep per directory at a time;
every shipped sweep, tune and validation-suite file passes."""

import fcntl
import json
import re
from pathlib import Path

import pytest
import yaml

from innerpo.cli import main
from innerpo.experiments.check import LOCK
from innerpo.train.run_dir import save_config

REPO = Path(__file__).parents[2]
GENIES = REPO / ".." / "shared" / "data" / "genies"
TINY = {
    "model": {"base_model": "tiny-random", "lora_r": 4},
    "data": {"dataset": "synthetic", "max_train_pairs": 16, "batch_size": 4, "max_length": 64},
    "training": {"max_steps": 2, "eval_every": 0, "lr": 1e-3},
    "eval": {"max_pairs": 4},
}


def _exit_code(argv):
    try:
        main(argv)
    except SystemExit as e:
        return e.code
    return 0


def _sweep(tmp_path, **values):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "sw"), "base": TINY, **values}))
    return str(path)


def test_check_names_every_cell_and_every_refusal_and_writes_nothing(tmp_path, capsys):
    path = _sweep(tmp_path, methods=["dpo", "hs-ether-innerpo"], seeds=[1, 2], **{"method.beta": [0.1, -1.0]})
    assert _exit_code(["sweep", path, "--check"]) == 2
    out, err = capsys.readouterr()
    assert "dpo_beta=0.1_seed1: would run" in out and "dpo_beta=0.1_seed2: would run" in out
    assert re.search(r"dpo_beta=-1_seed1: REFUSED: .*beta", out)
    assert "dpo_beta=-1_seed2: REFUSED: as dpo_beta=-1_seed1" in out  # a reason is printed once
    assert "hs-ether-innerpo_beta=0.1_seed1: REFUSED: --method.transform=ether" in out  # build_method's refusal
    assert "8 cells: 2 run, 6 refused" in out
    assert "6 cell(s) refused:" in err and "hs-ether-innerpo_beta=0.1_seed2" in err
    assert not (tmp_path / "sw").exists()
    # the same sweep without --check refuses to start, naming them, before anything is written
    assert _exit_code(["sweep", path]) == 2
    assert "nothing was run or written" in capsys.readouterr().err and not (tmp_path / "sw").exists()


def test_check_reports_the_directory_state_of_each_cell(tmp_path, capsys):
    path = _sweep(tmp_path, methods=["dpo"], seeds=[1, 2, 3])
    from innerpo.experiments.sweep_file import cells, load_sweep

    grid = {c.name: c for c in cells(load_sweep(path))}
    done, half, other = grid["dpo_seed1"], grid["dpo_seed2"], grid["dpo_seed3"]
    for cell in (done, half):
        cell.dir.mkdir(parents=True)
        save_config(cell.dir, cell.config)
    (done.dir / "summary.json").write_text(json.dumps({"suite": "synthetic", "shifts": {}}))
    assert _exit_code(["sweep", path, "--check"]) == 0
    out = capsys.readouterr().out
    assert "dpo_seed1: already done" in out and "dpo_seed2: would run again from scratch" in out
    assert "dpo_seed3: would run" in out and not other.dir.exists()
    # a finished cell trained with other settings is refused, with what differs
    assert _exit_code(["sweep", path, "--check", "--training.max_steps=3"]) == 2
    assert "dpo_seed1: REFUSED: finished with other settings (training.max_steps: 2 -> 3)" in capsys.readouterr().out


def test_a_second_sweep_on_a_directory_in_use_is_refused(tmp_path, capsys):
    path = _sweep(tmp_path, methods=["dpo"], seeds=[1])
    (tmp_path / "sw").mkdir()
    with open(tmp_path / "sw" / LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what the running sweep's process holds
        for extra in ([], ["--check"]):
            assert _exit_code(["sweep", path, *extra]) == 2
            assert "another `innerpo sweep` is running on" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "sw").iterdir()) == [LOCK]


def test_datasets_can_name_the_methods_that_train_on_them(tmp_path):
    from innerpo.experiments.sweep_file import cells, load_sweep

    path = _sweep(
        tmp_path,
        methods=["dpo", "ipo"],
        seeds=[1],
        datasets=["synthetic", {"dataset": "synthetic:difficulty_scaling", "suite": "synthetic", "methods": ["dpo"]}],
    )
    assert [c.name for c in cells(load_sweep(path))] == [
        "dpo_synthetic_seed1",
        "dpo_difficulty_scaling_seed1",
        "ipo_synthetic_seed1",
    ]


needs_genies = pytest.mark.skipif(not GENIES.is_dir(), reason="GENIES data not found at ../shared/data/genies")


@needs_genies
@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs" / "sweeps").glob("*.yaml")))
def test_every_shipped_sweep_file_passes_its_check(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the tune outputs a tuned sweep reads are found from here
    text = (REPO / "configs" / "sweeps" / name).read_text()
    for config in re.findall(r"config: (outputs/tune/\S+/best\.yaml)", text):  # stand-ins for `innerpo tune`'s output
        Path(config).parent.mkdir(parents=True, exist_ok=True)
        Path(config).write_text("training: {lr: 2.0e-4}\nmethod: {beta: 0.2}\n")
    argv = ["sweep", str(REPO / "configs" / "sweeps" / name), "--check", f"--data.genies_dir={GENIES}"]
    code = _exit_code([*argv, "--output_dir", str(tmp_path / "sw")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "REFUSED" not in out and " would run" in out and not (tmp_path / "sw").exists()


@needs_genies
@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs" / "tune").glob("*.yaml")))
def test_every_shipped_tune_space_builds(name, tmp_path):
    """What `innerpo tune` checks before it writes: the space against the method (every edge of
    every range builds), the validation suite and the objective. Each file names its command."""
    from innerpo.tune.command import build

    path = REPO / "configs" / "tune" / name
    found = re.search(rf"innerpo tune (\S+) --space configs/tune/{re.escape(name)}", path.read_text())
    assert found, f"{path}: its header should show the `innerpo tune METHOD --space {path.name}` it is for"
    spec, _, _, _ = build(
        [found.group(1), "--space", str(path), "--output_dir", str(tmp_path / "t"), f"--data.genies_dir={GENIES}"]
    )
    assert spec.method == found.group(1) and spec.space and not (tmp_path / "t").exists()


@needs_genies
@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs" / "tune" / "suites").glob("*.yaml")))
def test_every_shipped_validation_suite_loads(name):
    """A suite a tune file points at: every shift's source exists in the GENIES data and has pairs
    (what `innerpo tune` and `innerpo train` validate before they write)."""
    from innerpo.data.config import DataConfig
    from innerpo.eval.config import EvalConfig
    from innerpo.train.validate import validate_suite

    path = REPO / "configs" / "tune" / "suites" / name
    shipped = [p.read_text() for p in (REPO / "configs").rglob("*.yaml")]
    assert any(f"configs/tune/suites/{name}" in text for text in shipped), f"{path}: no shipped file uses it"
    validate_suite(EvalConfig(suite=str(path)), DataConfig(genies_dir=str(GENIES)))
