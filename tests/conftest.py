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
