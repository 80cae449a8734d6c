"""RUN/environment.json: what each start of a run ran on."""

import json
import re
from importlib import metadata
from pathlib import Path

import torch

from innerpo.train import environment

REPO = Path(__file__).parents[2]


def test_describe_names_the_versions_that_compute_the_numbers():
    entry = environment.describe("cpu")
    assert entry["packages"]["torch"] == torch.__version__
    assert entry["packages"]["transformers"] == metadata.version("transformers")
    assert entry["innerpo"] == metadata.version("innerpo") and entry["device"] == "cpu"
    assert entry["accelerator"] is None and entry["torch_threads"] == torch.get_num_threads()
    if (REPO / ".git").exists():  # tests run from a checkout: its commit
        assert re.fullmatch(r"[0-9a-f]{40}", entry["commit"]) and isinstance(entry["dirty"], bool)
    json.dumps(entry)  # JSON-ready


def test_each_start_is_appended_and_unreadable_files_read_as_none(tmp_path):
    assert environment.load(tmp_path) == []
    environment.record(tmp_path)
    environment.record(tmp_path, resumed_at_step=4)
    first, second = environment.load(tmp_path)
    assert "resumed_at_step" not in first and second["resumed_at_step"] == 4
    assert environment.key(first) == environment.key(second)  # same process: one environment
    (tmp_path / environment.FILENAME).write_text("{not json")
    assert environment.load(tmp_path) == []


def test_the_key_ignores_times_and_threads_but_not_versions():
    a = {**environment.describe(), "started": "t0", "torch_threads": 1}
    b = {**a, "started": "t1", "torch_threads": 8}
    assert environment.key(a) == environment.key(b)
    c = {**a, "packages": {**a["packages"], "transformers": "0.0.1"}}
    assert environment.key(a) != environment.key(c)
    line = environment.summary({**a, "commit": "abcdef0123", "dirty": True})
    assert "(abcdef0, uncommitted changes)" in line and f"torch {torch.__version__}" in line
