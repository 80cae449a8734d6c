"""The sweep form "best config per method x seeds": methods entries naming a config file."""

import pytest
import yaml

from innerpo.experiments.sweep_file import SweepFileError, cells, parse_sweep
from innerpo.tune.study import TuneSpec, best_config, trial_config


def test_a_tuned_config_is_rerun_on_fresh_seeds_and_tested_on_the_real_suite(tmp_path):
    spec = TuneSpec("dpo", {}, {"training": {"max_steps": 7}}, suite="synthetic", validation_suite="/v/suite.yaml")
    trial = trial_config(spec, {"training.lr": 3e-4, "method.beta": 0.2}, tmp_path / "trial-0003")
    assert trial.eval.suite == "/v/suite.yaml" and trial.training.max_steps == 7
    best = tmp_path / "tune" / "best.yaml"
    best.parent.mkdir()
    best.write_text(yaml.safe_dump(best_config(spec, trial)))
    sweep = {
        "methods": [{"method": "dpo", "config": "tune/best.yaml", "name": "dpo-tuned"}, "dpo"],
        "seeds": [1, 2],
        "base": {"training": {"max_steps": 5}},
        "output_dir": str(tmp_path / "sweep"),
    }
    grid = cells(parse_sweep(sweep, "s.yaml", root=tmp_path))  # config paths relative to the sweep file
    tuned = [c for c in grid if c.axes["method"] == "dpo-tuned"]
    assert [c.config.training.seed for c in tuned] == [1, 2] and [c.name for c in tuned] == [
        "dpo-tuned_seed1",
        "dpo-tuned_seed2",
    ]
    for cell in tuned:
        assert cell.config.training.lr == 3e-4 and cell.config.method.beta == 0.2  # the tuned values
        assert cell.config.training.max_steps == 5  # base overrides the file
        assert cell.config.eval.suite == "synthetic" and cell.config.method_name == "dpo"  # tested on the real suite
        assert cell.config.output_dir == str(tmp_path / "sweep" / cell.name)
    plain = [c for c in grid if c.axes["method"] == "dpo"]
    assert plain[0].config.training.lr == 1e-4 and plain[0].config.method.beta == 0.1


def test_bad_methods_entries_are_named(tmp_path):
    with pytest.raises(SweepFileError, match="unknown method 'nope'"):
        parse_sweep({"methods": [{"method": "nope", "config": "x.yaml"}]}, "s.yaml", root=tmp_path)
    with pytest.raises(SweepFileError, match="each entry is a method name or"):
        parse_sweep({"methods": [{"method": "dpo"}]}, "s.yaml", root=tmp_path)
    with pytest.raises(SweepFileError, match="file not found: missing.yaml"):
        parse_sweep({"methods": [{"method": "dpo", "config": "missing.yaml"}]}, "s.yaml", root=tmp_path)
    (tmp_path / "b.yaml").write_text("training: {lr: 0.001}\n")
    two = [{"method": "dpo", "config": "b.yaml"}, "dpo"]  # the same label twice
    with pytest.raises(SweepFileError, match="share the directory name"):
        parse_sweep({"methods": two}, "s.yaml", root=tmp_path)
