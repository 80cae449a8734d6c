"""tests/gpu: what only a CUDA device can check (issue 21). Every test here is marked `gpu`
and skipped without a device; run them on one with `pytest -m gpu tests/gpu`."""

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    here = str(__file__).rsplit("/", 1)[0]
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.gpu)
            if not torch.cuda.is_available():
                item.add_marker(skip)
