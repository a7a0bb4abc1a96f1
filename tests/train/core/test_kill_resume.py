"""No checkpoint is ever lost: SIGKILL a real `edge-s2s train` process at random moments and resume.

After every kill `last.pt` (and `best.pt`) must load, the step counter must never go back, and
the run resumed four times must end where an uninterrupted run ends, bit for bit. A corrupt or
truncated `last.pt` given to `--resume` is one `error:` line and exit code 1.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from edge_s2s.cli.app import run
from edge_s2s.runtime.tools.run_logs import read_metrics
from edge_s2s.train.core.checkpoint import BEST, LAST, load_checkpoint

pytestmark = pytest.mark.slow

EPOCHS = 25
TINY = ["--batch-size", "16", "--lr", "0.01", "--emb-dim", "16", "--enc-hidden", "16", "--dec-hidden", "32",
        "--att-dim", "16", "--max-length", "8", "--vocab-min-count", "1", "--no-progress"]
KILLS = 5
# What a run directory may hold after a kill: its files, and the temp file of a write the kill interrupted.
RUN_FILES = {"config.json", "tokens.txt", "val.tsv", LAST, BEST, "metrics.jsonl", "steps.jsonl"}
TEMP = re.compile(r"^\.(last|best)\.pt\..+\.tmp$|^\.steps\.jsonl\..+\.tmp$")


def _train_args(data: Path, out: Path, resume: bool, checkpoint_every: int = 1) -> list[str]:
    args = ["train", "translate", "--out", str(out), "--epochs", str(EPOCHS), *TINY]
    args += ["--checkpoint-every", str(checkpoint_every)] if checkpoint_every else []
    return args + (["--resume"] if resume else ["--data", str(data)])


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
    with open(log, "ab") as f:
        return subprocess.Popen([sys.executable, "-m", "edge_s2s.cli.app", *args], stdout=f, stderr=subprocess.STDOUT,
                                env=env)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _wait_for_new_checkpoint(proc: subprocess.Popen, last: Path, log: Path, timeout: float = 120.0) -> None:
    """Block until the process has replaced last.pt at least once (so every kill lands mid-training)."""
    before = _inode(last)
    t0 = time.monotonic()
    while _inode(last) in (None, before):
        if proc.poll() is not None:
            pytest.fail(f"training exited ({proc.returncode}) before writing a checkpoint:\n{log.read_text()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("no checkpoint written in time")
        time.sleep(0.01)


def _check_run_dir(run_dir: Path) -> dict:
    """After a kill: only run files and interrupted temp files, and both checkpoints load."""
    strays = [p.name for p in run_dir.iterdir() if p.name not in RUN_FILES and not TEMP.match(p.name)]
    assert not strays, strays
    ck = load_checkpoint(run_dir / LAST)  # complete and loadable, or this raises
    pos = ck["position"]
    assert pos["step"] == ck["step"]
    if (run_dir / BEST).exists():
        assert load_checkpoint(run_dir / BEST)["step"] <= ck["step"]
    return ck


def test_sigkill_at_random_moments_loses_nothing(toy_tsv, tmp_path):
    torch.set_num_threads(1)
    rng = random.Random(6)
    run_dir, log = tmp_path / "killed", tmp_path / "train.log"
    steps, temps = [], 0
    for k in range(KILLS):
        proc = _start(_train_args(toy_tsv, run_dir, resume=k > 0), log)
        _wait_for_new_checkpoint(proc, run_dir / LAST, log)
        time.sleep(rng.uniform(0.0, 0.6))  # a random moment: mid-step, mid-write, mid-validation
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, f"training ended before kill {k + 1}: make the run longer"
        ck = _check_run_dir(run_dir)
        # The resumed process wrote at least one checkpoint before the kill: the position moved on. (The
        # save after an epoch's last batch and the epoch-end save after validation share a step number.)
        where = (ck["step"], ck["position"]["epoch"])
        assert not steps or where > steps[-1], (steps, where)
        steps.append(where)
        temps = sum(1 for p in run_dir.iterdir() if TEMP.match(p.name))

    # The last resume runs to the end, despite any temp files the kills left behind.
    proc = _start(_train_args(toy_tsv, run_dir, resume=True), log)
    assert proc.wait(timeout=300) == 0, log.read_text()
    final = _check_run_dir(run_dir)
    assert len(set(steps)) == KILLS and steps == sorted(steps)
    steps = [s for s, _ in steps]

    # The same run without interruptions (in-process, checkpoints only at epoch ends) ends identically.
    ref_dir = tmp_path / "reference"
    assert run(_train_args(toy_tsv, ref_dir, resume=False, checkpoint_every=0)) == 0
    ref = load_checkpoint(ref_dir / LAST)
    per_epoch = read_metrics(ref_dir)[0]["step"]
    assert ref["step"] == final["step"] == EPOCHS * per_epoch
    assert final["position"]["epoch"] == EPOCHS and final["position"]["batch"] == 0
    assert all(s <= final["step"] for s in steps)
    for name, w in ref["model"].items():
        assert torch.equal(final["model"][name], w), f"{name} differs after {KILLS} kills and resumes"
    # Every epoch line that was written matches the uninterrupted run (a kill never duplicates one).
    ref_metrics = {m["epoch"]: m for m in read_metrics(ref_dir)}
    got = read_metrics(run_dir)
    epochs = [m["epoch"] for m in got]
    assert epochs == list(range(1, EPOCHS + 1))  # --resume writes back a line a kill cut off
    for m in got:
        assert m["step"] == ref_metrics[m["epoch"]]["step"]
        assert m["train_loss"] == pytest.approx(ref_metrics[m["epoch"]]["train_loss"], rel=1e-6)
    steps_file = run_dir / "steps.jsonl"
    if steps_file.is_file():  # per-step log: trimmed to the checkpoint on resume, so each step once, in order
        logged = [json.loads(line)["step"] for line in steps_file.read_text().splitlines()]
        assert logged == sorted(set(logged)) and logged[-1] == final["step"]
    print(f"kills at steps {steps}; {temps} temp files left by the kills; "
          f"{EPOCHS - len(got)} epoch lines missing from metrics.jsonl")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, toy_tsv) -> Path:
    """A tiny finished translate run (in-process), to break its last.pt."""
    out = tmp_path_factory.mktemp("resume-broken") / "run"
    assert run(["train", "translate", "--data", str(toy_tsv), "--out", str(out), "--epochs", "1", *TINY]) == 0
    return out


@pytest.mark.parametrize("mangle", ["random-bytes", "truncated"])
def test_broken_last_checkpoint_is_one_line(finished_run, tmp_path, capsys, mangle):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    last = run_dir / LAST
    good = last.read_bytes()
    if mangle == "random-bytes":
        last.write_bytes(random.Random(0).randbytes(len(good)))
    else:
        last.write_bytes(good[: len(good) // 2])
    broken = last.read_bytes()
    capsys.readouterr()
    assert run(["train", "translate", "--out", str(run_dir), "--resume", "--epochs", "2", *TINY]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "corrupt or truncated" in err[0] and str(last) in err[0]
    assert "Traceback" not in err[0]
    assert last.read_bytes() == broken  # left as it was for the user to inspect, not overwritten
