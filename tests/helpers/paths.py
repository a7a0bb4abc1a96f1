"""Where things are, for tests in any folder: the repository, its test data and ../shared."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_DATA = REPO / "tests" / "data"
SHARED = REPO.parent / "shared"
