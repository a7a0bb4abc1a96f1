import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy import write_toy_tsv  # noqa: E402


@pytest.fixture(scope="session")
def toy_tsv(tmp_path_factory):
    """~240 generated pairs of the synthetic reverse-and-map task."""
    return write_toy_tsv(tmp_path_factory.mktemp("data") / "toy.tsv")
