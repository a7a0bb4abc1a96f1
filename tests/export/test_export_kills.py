"""Replacing a bundle survives a kill at any instant: `out` always holds the old bundle or the new
one, complete, and the next export clears what a killed one left beside it (as the training kill
test does for checkpoints: real processes, SIGKILL at seeded random moments)."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from toy import tiny_config

from edge_s2s.export.bundle_writer import OLD_TAG, TMP_TAG, _recover
from edge_s2s.runtime.bundle import Bundle
from edge_s2s.train.translate.loop import train_translator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(toy_tsv, tmp_path_factory):
    return train_translator(tiny_config(toy_tsv, tmp_path_factory.mktemp("kill") / "run", epochs=1), progress=False)


OLD, NEW = "old", "new"  # the old bundle is exported without the parity proof, the new one with it


def _export(run_dir, out, which: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge_s2s", "export", str(run_dir), "--out", str(out),
                             *(["--no-parity"] if which == OLD else [])], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))


def _which(out) -> str:
    """Which complete bundle is at `out` (the check fails on anything missing or half written)."""
    manifest, _ = Bundle.check(out)
    return NEW if "parity" in manifest.metrics else OLD


def _leftovers(out) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_a_kill_at_any_moment_leaves_the_old_or_the_new_bundle(run_dir, tmp_path):
    out = tmp_path / "bundle"
    t0 = time.monotonic()
    assert _export(run_dir, out, OLD).wait(timeout=300) == 0  # the old bundle
    full = time.monotonic() - t0
    rng = random.Random(11)
    seen = set()
    for _ in range(6):
        p = _export(run_dir, out, NEW)
        time.sleep(rng.uniform(0.3 * full, 1.1 * full))  # the graph export, parity and the swap at the end
        p.send_signal(signal.SIGKILL)
        p.wait()
        seen.add(_which(out))  # old or new, never missing or half written
    assert seen <= {OLD, NEW}
    assert _export(run_dir, out, NEW).wait(timeout=300) == 0
    assert _which(out) == NEW and _leftovers(out) == []  # the last export cleared every killed one's files


def test_recovery_puts_a_moved_aside_bundle_back(run_dir, tmp_path):
    """Where the atomic swap is unavailable the old bundle is moved aside first: a kill right then
    leaves `out` missing, and the next export (its first step, `_recover`) puts it back."""
    out = tmp_path / "bundle"
    assert _export(run_dir, out, OLD).wait(timeout=300) == 0
    dead = 2**22 + 12345  # a PID no process has
    os.replace(out, out.parent / f".{out.name}{OLD_TAG}{dead}")
    (out.parent / f".{out.name}{TMP_TAG}{dead}-abc").mkdir()  # and a half-written export
    (out.parent / f".{out.name}{TMP_TAG}{dead}-abc" / "encoder.onnx").write_bytes(b"half")
    _recover(out)
    assert _which(out) == OLD and _leftovers(out) == []
    mine = out.parent / f".{out.name}{TMP_TAG}{os.getppid()}-live"  # a live process's export is left alone
    mine.mkdir()
    _recover(out)
    assert mine.is_dir()
    shutil.rmtree(mine)
    assert "parity" not in json.loads((out / "manifest.json").read_text())["metrics"]
