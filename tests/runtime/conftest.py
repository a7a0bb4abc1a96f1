import pytest
from graphs import write_model_bundle


@pytest.fixture(scope="session")
def model_bundle(tmp_path_factory):
    """The small random attention + NTM-memory model, written once per test session."""
    return write_model_bundle(tmp_path_factory.mktemp("model_bundle"))
