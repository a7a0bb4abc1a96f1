"""Bad input: one `error:` line naming the problem and the fix, exit code 1, no traceback."""

import json
import shutil
import subprocess
import sys

import pytest

from edge_s2s.cli.app import run

pytestmark = pytest.mark.slow


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


@pytest.fixture
def bundle_copy(cli_bundle, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(cli_bundle, d)
    return d


def test_missing_bundle(tmp_path, capsys):
    assert run(["translate", "--bundle", str(tmp_path / "nope"), "hallo"]) == 1
    assert "does not exist" in _error(capsys)


def test_not_a_bundle(tmp_path, capsys):
    assert run(["translate", "--bundle", str(tmp_path), "hallo"]) == 1
    assert "manifest.json" in _error(capsys)


def test_corrupt_manifest(bundle_copy, capsys):
    (bundle_copy / "manifest.json").write_text("{not json", encoding="utf-8")
    assert run(["info", str(bundle_copy)]) == 1
    assert "not valid JSON" in _error(capsys)


def test_wrong_format_version(bundle_copy, capsys):
    m = json.loads((bundle_copy / "manifest.json").read_text())
    m["format_version"] = 99
    (bundle_copy / "manifest.json").write_text(json.dumps(m))
    assert run(["translate", "--bundle", str(bundle_copy), "ka"]) == 1
    assert "format version 99" in _error(capsys)


def test_missing_tokens_file(bundle_copy, capsys):
    (bundle_copy / "tokens.txt").unlink()
    assert run(["translate", "--bundle", str(bundle_copy), "ka"]) == 1
    assert "tokens.txt" in _error(capsys)


def test_corrupt_graph(bundle_copy, capsys):
    (bundle_copy / "decoder_step.onnx").write_bytes(b"\x00garbage")
    assert run(["translate", "--bundle", str(bundle_copy), "ka"]) == 1
    assert "decoder_step.onnx" in _error(capsys)


def test_unknown_provider(cli_bundle, capsys):
    assert run(["translate", "--bundle", str(cli_bundle), "--provider", "tpu", "ka"]) == 1
    assert "tpu" in _error(capsys)


def test_empty_input(cli_bundle, capsys):
    assert run(["translate", "--bundle", str(cli_bundle), "   "]) == 1
    assert "empty" in _error(capsys)


def test_too_long_input(cli_bundle, capsys):
    assert run(["translate", "--bundle", str(cli_bundle), " ".join(["ka"] * 50)]) == 1
    assert "limit" in _error(capsys)


def test_conflicting_search_options(cli_bundle, capsys):
    assert run(["translate", "--bundle", str(cli_bundle), "--sample", "--beam", "3", "ka"]) == 1
    assert "--sample" in _error(capsys)


def test_training_data_missing(tmp_path, capsys):
    assert run(["train", "translate", "--data", str(tmp_path / "none.tsv"), "--out", str(tmp_path / "r")]) == 1
    assert "does not exist" in _error(capsys)


def test_installed_command_non_utf8_stdin_and_help(cli_bundle):
    """The console script itself: a real process, non-UTF-8 stdin, exit 1, no traceback."""
    exe = shutil.which("edge-s2s") or ""
    cmd = [exe] if exe else [sys.executable, "-m", "edge_s2s.cli.app"]
    p = subprocess.run(cmd + ["translate", "--bundle", str(cli_bundle)], input=b"\xff\xfe bad\n", capture_output=True)
    assert p.returncode == 1
    assert p.stderr.decode().strip().startswith("error: standard input is not UTF-8")
    assert b"Traceback" not in p.stderr
    h = subprocess.run(cmd + ["translate", "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "--beam" in h.stdout


def test_unknown_decoder(toy_tsv, tmp_path, capsys):
    assert run(["train", "translate", "--data", str(toy_tsv), "--out", str(tmp_path / "r"), "--decoder", "gru"]) == 1
    assert "decoder must be one of lstm, ntm" in _error(capsys)
