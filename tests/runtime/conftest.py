import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from graphs import write_model_bundle  # noqa: E402


@pytest.fixture(scope="session")
def model_bundle(tmp_path_factory):
    """The small random attention + NTM-memory model, written once per test session."""
    return write_model_bundle(tmp_path_factory.mktemp("model_bundle"))
