"""`torchrun --nproc-per-node 2 -m edge_s2s.train translate`: two real CPU processes (gloo) train the
tiny translator with DistributedDataParallel, against one plain process with the same settings.

Tolerance of the comparison: the two runs compute the same global-batch gradient (each rank's
loss is weighted by its share of the batch's target tokens), but in a different float32
summation order (two half-batch sums plus the all-reduce), ~1e-7 relative per step; Adam
carries that over the 45 steps to a measured 9e-6 max weight difference. The bound, 1e-4, is
10x that, and still 25x below what a real mistake gives: averaging the ranks' per-token means
without the token weighting (a plain DDP average) ends 2.5e-3 away.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edge_s2s.cli.app import run
from edge_s2s.runtime.tools.run_logs import read_metrics, read_steps
from edge_s2s.train.core.checkpoint import LAST, load_checkpoint

pytestmark = pytest.mark.slow

EPOCHS = 3  # 216 training pairs / batch 16 = 14 batches an epoch, whatever the number of processes
ARGS = ["--epochs", str(EPOCHS), "--batch-size", "16", "--lr", "0.01", "--emb-dim", "16", "--enc-hidden", "16",
        "--dec-hidden", "32", "--att-dim", "16", "--max-length", "8", "--vocab-min-count", "1", "--dropout", "0",
        "--val-fraction", "0.1", "--seed", "3"]
WEIGHT_TOL = 1e-4


def torchrun(args: list[str], log: Path) -> subprocess.CompletedProcess:
    """Two gloo processes on this machine; --standalone picks a free rendezvous port."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "edge_s2s", "train", "translate", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    log.write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def runs(toy_tsv, tmp_path_factory):
    """One plain run, one torchrun run, and one torchrun run stopped at step 20 and resumed."""
    root = tmp_path_factory.mktemp("ddp")
    assert run(["train", "translate", "--data", str(toy_tsv), "--out", str(root / "single"), "--no-progress", *ARGS]) == 0
    ddp = torchrun(["--data", str(toy_tsv), "--out", str(root / "ddp"), *ARGS], root / "ddp.log")  # with progress
    torchrun(["--data", str(toy_tsv), "--out", str(root / "resumed"), "--max-steps", "20", "--no-progress", *ARGS],
             root / "part1.log")
    stopped = load_checkpoint(root / "resumed" / LAST)["step"]
    torchrun(["--out", str(root / "resumed"), "--resume", "--no-progress", *ARGS], root / "part2.log")
    return {"root": root, "ddp_out": ddp.stdout, "ddp_err": ddp.stderr, "stopped": stopped}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / LAST)["model"]


def test_two_processes_converge(runs):
    m = read_metrics(runs["root"] / "ddp")
    assert [r["epoch"] for r in m] == list(range(1, EPOCHS + 1))
    assert m[-1]["val_loss"] < 0.8 * m[0]["val_loss"]
    steps = read_steps(runs["root"] / "ddp")
    assert steps[-1]["loss"] < 0.7 * steps[0]["loss"]  # the first step's loss is the untrained model's


def test_two_processes_match_one(runs):
    single, ddp = runs["root"] / "single", runs["root"] / "ddp"
    a, b = _weights(single), _weights(ddp)
    assert a.keys() == b.keys()
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert diff < WEIGHT_TOL, f"weights differ by {diff:.3g}"
    for x, y in zip(read_metrics(single), read_metrics(ddp), strict=True):
        assert x["step"] == y["step"]  # the global batch, hence the step count, does not depend on N
        assert abs(x["val_loss"] - y["val_loss"]) < 1e-4
        assert abs(x["train_loss"] - y["train_loss"]) < 1e-4  # reduced over both ranks, not rank 0's half
    s1, s2 = read_steps(single), read_steps(ddp)
    assert [d["tokens"] for d in s1] == [d["tokens"] for d in s2]  # every step saw the whole global batch


def test_rank_zero_alone_logs(runs):
    assert runs["ddp_out"].count("run directory:") == 1
    assert runs["ddp_out"].count("epoch 1: train loss") == 1
    assert "tok_s=" in runs["ddp_err"] and "steps_s=" in runs["ddp_err"]  # the progress bar's throughput
    lines = (runs["root"] / "ddp" / "steps.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == list(range(1, len(lines) + 1))  # one writer, no duplicates


def test_resume_under_torchrun_continues(runs):
    resumed, ddp = runs["root"] / "resumed", runs["root"] / "ddp"
    assert runs["stopped"] == 20
    m = read_metrics(resumed)
    assert [r["step"] for r in m] == [r["step"] for r in read_metrics(ddp)]
    steps = [d["step"] for d in read_steps(resumed)]
    assert steps == list(range(1, steps[-1] + 1)) and steps[-1] == m[-1]["step"]
    times = [d["time"] for d in read_steps(resumed)]
    assert times == sorted(times)  # the clock goes on across the restart
    a, b = _weights(resumed), _weights(ddp)  # dropout 0: the resumed run ends where the uninterrupted one does
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def test_ntm_task_under_torchrun_matches_one_process(tmp_path):
    """`train ntm` runs through the shared loop, so torchrun needs nothing else: each example is a
    pure function of (seed, its number), so two ranks see the single process's batches."""
    args = ["--task", "copy", "--steps", "12", "--eval-every", "6", "--batch-size", "8", "--controller-size", "16",
            "--memory-slots", "12", "--memory-width", "6", "--emb-dim", "8", "--max-length", "3", "--lr", "0.01",
            "--no-progress"]
    assert run(["train", "ntm", "--out", str(tmp_path / "one"), *args]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "edge_s2s", "train", "ntm", "--out", str(tmp_path / "two"), *args],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < WEIGHT_TOL
    assert [r["step"] for r in read_metrics(tmp_path / "two")] == [6, 12]
    assert [d["step"] for d in read_steps(tmp_path / "two")] == list(range(1, 13))
