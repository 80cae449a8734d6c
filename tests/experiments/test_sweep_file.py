"""Sweep files and flags -> the grid of cells (no training)."""

from pathlib import Path

import pytest

from innerpo.errors import InputError
from innerpo.experiments.cells import cell_name
from innerpo.experiments.command import build
from innerpo.experiments.executors import LocalExecutor, SubmititExecutor, WorkerExecutor
from innerpo.experiments.sweep_file import SweepFileError, cells, load_sweep, parse_sweep

REPO = Path(__file__).resolve().parents[2]


def test_grid_names_precedence_and_order(tmp_path):
    spec = parse_sweep(
        {
            "methods": ["dpo", "hs-none-innerpo"],
            "seeds": [1, 2],
            "training.lr": [1e-4, 5e-5],
            "base": {
                "training": {"max_steps": 7, "lr": 1.0},
                "method": {"beta": 0.2},
                "model": {"base_model": "tiny-random"},
            },
            "output_dir": str(tmp_path / "sw"),
        },
        "test",
    )
    grid = cells(spec)
    assert len(grid) == 8
    # seeds outermost: every method's first seed runs before any second seed
    assert [c.axes["seed"] for c in grid] == [1] * 4 + [2] * 4
    assert grid[0].name == "dpo_lr=0.0001_seed1" and grid[1].name == "dpo_lr=5e-05_seed1"
    assert grid[2].name == "hs-none-innerpo_lr=0.0001_seed1"
    c = grid[1].config
    assert c.training.lr == 5e-5 and c.training.max_steps == 7 and c.training.seed == 1  # axis beats base
    assert c.method.beta == 0.2 and c.method_name == "dpo" and c.output_dir == str(tmp_path / "sw" / grid[1].name)
    assert grid[2].config.method.hidden_loss == "innerpo"  # the preset still applies under base
    assert grid[1].dir == tmp_path / "sw" / "dpo_lr=5e-05_seed1"


def test_cell_names_shorten_keys_unless_ambiguous():
    assert cell_name("dpo", 3, "genies:alpaca_easy", {"method.beta": 0.1}) == "dpo_alpaca_easy_beta=0.1_seed3"
    assert cell_name("dpo", 1, None, {"method.beta": 0.1, "x.beta": 2}) == "dpo_method.beta=0.1_x.beta=2_seed1"
    assert cell_name("dpo", 1, "data/my prefs.jsonl") == "dpo_my-prefs_seed1"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"methods": ["nope"]}, "unknown method 'nope'"),
        ({"methods": ["dpo"], "sedes": [1]}, "unknown key(s) 'sedes'"),
        ({"seeds": [1, 1]}, "lists a value twice"),
        ({"seeds": ["a"]}, "seeds must be integers"),
        ({"training.lrr": [1e-4]}, "unknown setting 'lrr'"),
        ({"training.lr": 1e-4}, "training.lr must be a non-empty list"),
        (
            {"base": {"training": {"max_stpes": 3}}},
            "sweep.yaml, cell dpo_seed42 (base).training: unknown setting 'max_stpes'",
        ),
        ({"datasets": [{"data": "x"}]}, "datasets[0] must be"),
    ],
)
def test_bad_sweep_files_are_refused_with_the_key(values, message):
    with pytest.raises(SweepFileError) as e:
        parse_sweep(values, "sweep.yaml")
    assert message in str(e.value) and "sweep" in str(e.value)


def test_flags_override_the_file_and_pick_the_executor(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "methods: [dpo]\nseeds: [1, 2, 3]\nbase: {training: {max_steps: 5}}\nexecutor: {workers: 2, threads: 1}\n"
    )
    spec, executor = build(
        [str(path), "--seeds", "7", "--grid", "method.beta=0.1,0.2", "--training.max_steps=9", "--model.lora_r", "4"]
    )
    grid = cells(spec)
    assert [c.name for c in grid] == ["dpo_beta=0.1_seed7", "dpo_beta=0.2_seed7"]
    assert grid[0].config.training.max_steps == 9 and grid[0].config.model.lora_r == 4
    assert spec.sweep_dir() == Path("outputs/sweeps/s")
    assert isinstance(executor, WorkerExecutor) and (executor.workers, executor.threads) == (2, 1)
    _, executor = build([str(path), "--workers", "1"])
    assert isinstance(executor, WorkerExecutor) and executor.workers == 1
    _, executor = build([str(path), "--workers", "0"])
    assert isinstance(executor, LocalExecutor)
    _, executor = build([str(path), "--executor", "slurm", "--partition", "gpu", "--gpus", "1", "--time_min", "30"])
    assert isinstance(executor, SubmititExecutor) and executor.cluster == "slurm"
    assert executor.parameters() == {"slurm_partition": "gpu", "gpus_per_node": 1, "timeout_min": 30}
    _, executor = build([str(path), "--executor", "submitit-local", "--partition", "gpu", "--cpus", "2"])
    assert executor.parameters() == {"cpus_per_task": 2}  # slurm-only settings dropped off SLURM
    with pytest.raises(SweepFileError, match="unrecognised argument"):
        build([str(path), "--bogus"])


def test_the_old_out_key_works_with_a_deprecation_line(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(f"methods: [dpo]\nout: {tmp_path / 'sw'}\n")
    assert load_sweep(path).sweep_dir() == tmp_path / "sw"
    assert f"innerpo sweep: {path}: out is deprecated; use output_dir\n" in capsys.readouterr().err
    with pytest.raises(InputError, match="give output_dir only"):
        parse_sweep({"out": "a", "output_dir": "b"}, "sweep.yaml")


def test_shipped_sweep_files_parse(tmp_path, capsys):
    synthetic = load_sweep(REPO / "configs/sweeps/synthetic-seeds.yaml")
    assert (
        synthetic.sweep_dir() == Path("outputs/sweeps/synthetic-seeds") and "deprecated" not in capsys.readouterr().err
    )
    grid = cells(synthetic)
    assert len(grid) == 15 and {c.axes["method"] for c in grid} == {"dpo", "hs-none-innerpo", "hs-none-prefvec"}
    genies = load_sweep(REPO / "configs/sweeps/genies-seeds.yaml")
    grid = cells(genies)
    suites = {c.config.data.dataset: c.config.eval.suite for c in grid}
    assert suites["genies:alpaca_easy"] == "genies-alpaca" and suites["genies:math_easy"] == "genies-math"
    assert Path(suites["genies:alpaca_short"]).is_file()  # shipped suite file, found relative to the sweep file


def test_workers_hold_back_a_seed_until_its_family_has_written_the_caches(tmp_path):
    from innerpo.experiments.executors import _next_cell, family

    spec = parse_sweep({"methods": ["dpo", "ipo"], "seeds": [1, 2], "output_dir": str(tmp_path)}, "test")
    d1, i1, d2, i2 = cells(spec)
    assert family(d1) == family(d2) != family(i1)
    queue = [d2, i2]
    assert _next_cell(queue, warmed=set(), busy={family(d1), family(i1)}) is None  # both families still warming
    assert _next_cell(queue, warmed={family(i1)}, busy={family(d1), family(i1)}) is i2
    assert _next_cell(queue, warmed=set(), busy=set()) is d2
