import pytest


@pytest.fixture
def in_domain_suite(tmp_path):
    """The synthetic suite's in_domain shift alone, to spend a slow test's time on training."""
    suite = tmp_path / "synthetic-in-domain.yaml"
    suite.write_text("name: synthetic-in-domain\nshifts:\n  in_domain: {dataset: 'synthetic:in_domain', split: test}\n")
    return str(suite)
