import pytest

from innerpo.models import tiny


@pytest.fixture(scope="session")
def tiny_tok():
    return tiny.build_tokenizer()


@pytest.fixture
def tiny_model():
    return tiny.build()


@pytest.fixture(scope="session")
def shared_genies():
    """The GENIES copy beside the checkout (../shared/data/genies); skipped where absent."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "genies"
    if not path.is_dir():
        pytest.skip("../shared/data/genies not present")
    return str(path)


def write_pairs(path, n=12):
    """A small JSONL preference file whose rejected answers vary in length."""
    import json

    rows = [
        {"prompt": f"What is {i} + 1?", "chosen": str(i + 1), "rejected": str(i + 2) * (1 + i % 3)} for i in range(n)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


@pytest.fixture
def tiny_args(tmp_path, monkeypatch):
    """CLI flags for a 2-step tiny-random run on a JSONL file, evaluated on a YAML suite."""
    monkeypatch.setenv("INNERPO_CACHE", str(tmp_path / "cache"))
    data = write_pairs(tmp_path / "pairs.jsonl")
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"shifts:\n  in_domain: {{dataset: {data}}}\n")
    return [
        "--model.base_model=tiny-random",
        "--model.lora_r=4",
        f"--data.dataset={data}",
        "--data.batch_size=2",
        "--data.max_length=64",
        "--training.max_steps=2",
        "--training.eval_every=0",
        "--training.lr=1e-3",
        f"--eval.suite={suite}",
        "--eval.max_pairs=4",
    ]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: tiny-random runs are latency-bound, and on a 2-core machine
    shared with other jobs two threads ran the bundled model about 3x slower than one."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
