import pytest

from edge_s2s.cli.app import run


@pytest.fixture(scope="session")
def cli_bundle(tmp_path_factory, toy_tsv):
    """A tiny translator trained and exported through the CLI itself."""
    work = tmp_path_factory.mktemp("cli")
    run_dir, bundle = work / "run", work / "bundle"
    rc = run(["train", "translate", "--data", str(toy_tsv), "--out", str(run_dir), "--epochs", "3", "--batch-size", "16",
              "--lr", "0.01", "--emb-dim", "16", "--enc-hidden", "16", "--dec-hidden", "32", "--att-dim", "16",
              "--max-length", "8", "--vocab-min-count", "1", "--no-progress"])
    assert rc == 0
    rc = run(["export", str(run_dir), "--out", str(bundle)])
    assert rc == 0
    return bundle
