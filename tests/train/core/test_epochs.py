"""The shared epoch loop's pieces that need no second process: steps.jsonl (what it holds, how
--resume trims it), the batch sharding of DDP, the torchrun environment, `python -m edge_s2s train`."""

import json
import subprocess
import sys

from toy import tiny_config

from edge_s2s.runtime.tools.run_logs import STEPS_FILE, read_metrics, read_steps
from edge_s2s.train.core.distributed import World, shard, world_from_env
from edge_s2s.train.translate.loop import train_translator


def test_step_lines_add_up_to_the_epoch_metrics(toy_tsv, tmp_path):
    run = train_translator(tiny_config(toy_tsv, tmp_path / "run", epochs=2), progress=False)
    steps, epochs = read_steps(run), read_metrics(run)
    assert [d["step"] for d in steps] == list(range(1, epochs[-1]["step"] + 1))
    assert set(steps[0]) == {"step", "epoch", "loss", "tokens", "tokens_per_s", "lr", "time"}
    for m in epochs:
        mine = [d for d in steps if d["epoch"] == m["epoch"]]
        assert mine[-1]["step"] == m["step"]
        mean = sum(d["loss"] * d["tokens"] for d in mine) / sum(d["tokens"] for d in mine)
        assert abs(mean - m["train_loss"]) < 1e-9
    assert all(d["lr"] == 0.01 and d["tokens"] > 0 and d["tokens_per_s"] > 0 for d in steps)


def test_log_every_groups_steps(toy_tsv, tmp_path):
    cfg = tiny_config(toy_tsv, tmp_path / "run", epochs=1)
    cfg.log_every = 4
    run = train_translator(cfg, progress=False)
    steps = read_steps(run)
    assert [d["step"] for d in steps] == list(range(4, read_metrics(run)[-1]["step"] + 1, 4))


def test_resume_drops_step_lines_the_checkpoint_never_saw(toy_tsv, tmp_path):
    out = tmp_path / "run"
    train_translator(tiny_config(toy_tsv, out, epochs=3, max_steps=10), progress=False)
    with open(out / STEPS_FILE, "a", encoding="utf-8") as f:  # steps done after the checkpoint, and a torn line
        f.write(json.dumps({"step": 11, "epoch": 1, "loss": 9.0, "tokens": 1, "tokens_per_s": 1, "lr": 0.01,
                            "time": 99.0}) + '\n{"step": 12, "ep')
    train_translator(tiny_config(toy_tsv, out, epochs=3, max_steps=20), resume=True, progress=False)
    steps = read_steps(out)
    assert [d["step"] for d in steps] == list(range(1, 21))
    assert all(d["loss"] != 9.0 for d in steps)
    times = [d["time"] for d in steps]
    assert times == sorted(times) and times[-1] < 99.0


def test_shards_cover_each_global_batch_once():
    batch = list(range(10, 17))
    for size in (1, 2, 3):
        parts = [shard(batch, World(r, size))[0] for r in range(size)]
        assert sorted(i for p in parts for i in p) == batch
    assert shard([5], World(1, 2)) == ([5], False)  # nothing left for rank 1: it runs with weight 0
    assert shard([5], World(0, 2)) == ([5], True)


def test_world_comes_from_torchrun_environment(monkeypatch):
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert world_from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert world_from_env() is None  # torchrun with one process is the plain loop
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    w = world_from_env()
    assert (w.rank, w.size, w.local_rank, w.main) == (3, 4, 1, False)


def test_module_entry_is_the_train_command(tmp_path):
    """`python -m edge_s2s train ...` (what torchrun launches) is `edge-s2s train ...`."""
    proc = subprocess.run([sys.executable, "-m", "edge_s2s", "train", "translate", "--data",
                           str(tmp_path / "missing.tsv"), "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing.tsv" in err[0]


def test_keep_epochs_keeps_the_last_epoch_ends_and_they_average(toy_tsv, tmp_path):
    """keep_epochs=2 over 4 epochs leaves epoch-003.pt and epoch-004.pt; their average is the
    element-wise mean of the two models (export reads it like any checkpoint)."""
    import pytest
    import torch

    from edge_s2s.train.core.checkpoint import CheckpointError, average_checkpoints, load_checkpoint

    cfg = tiny_config(toy_tsv, tmp_path / "run", epochs=4)
    cfg.keep_epochs = 2
    run = train_translator(cfg, progress=False)
    kept = sorted(p.name for p in run.glob("epoch-*.pt"))
    assert kept == ["epoch-003.pt", "epoch-004.pt"]
    last, third = load_checkpoint(run / "last.pt"), load_checkpoint(run / "epoch-003.pt")
    fourth = load_checkpoint(run / "epoch-004.pt")
    assert all(torch.equal(last["model"][k], fourth["model"][k]) for k in last["model"])
    assert "optimizer" not in fourth and "optimizer" in last  # kept epochs hold the weights only
    avg = load_checkpoint(average_checkpoints([run / "epoch-003.pt", run / "epoch-004.pt"], tmp_path / "avg.pt"))
    assert avg["averaged_from"] == kept and "optimizer" not in avg
    moved = 0
    for k, v in avg["model"].items():
        if v.is_floating_point():
            assert torch.allclose(v, (last["model"][k] + third["model"][k]) / 2, atol=1e-6), k
            moved += int(not torch.equal(last["model"][k], third["model"][k]))
    assert moved > 0  # the two epochs differ, so the average is a third model
    with pytest.raises(CheckpointError, match="at least 2"):
        average_checkpoints([run / "last.pt"], tmp_path / "x.pt")
    other = tiny_config(toy_tsv, tmp_path / "other", epochs=1)
    other.model.enc_hidden = 2 * other.model.enc_hidden
    train_translator(other, progress=False)
    with pytest.raises(CheckpointError, match="different model"):
        average_checkpoints([run / "last.pt", tmp_path / "other" / "last.pt"], tmp_path / "y.pt")


def test_without_keep_epochs_no_epoch_files_are_written(toy_tsv, tmp_path):
    run = train_translator(tiny_config(toy_tsv, tmp_path / "run", epochs=2), progress=False)
    assert not list(run.glob("epoch-*.pt"))


def test_a_resumed_run_keeps_epochs_when_the_caller_asks(toy_tsv, tmp_path):
    """keep_epochs is schedule, like epochs: a run started without it keeps epoch ends from its resume on,
    and config.json records it for a later plain --resume."""
    out = tmp_path / "run"
    train_translator(tiny_config(toy_tsv, out, epochs=1), progress=False)
    assert not list(out.glob("epoch-*.pt"))
    cfg = tiny_config(toy_tsv, out, epochs=3)
    cfg.keep_epochs = 2
    train_translator(cfg, resume=True, progress=False)
    assert sorted(p.name for p in out.glob("epoch-*.pt")) == ["epoch-002.pt", "epoch-003.pt"]
    assert json.loads((out / "config.json").read_text())["train"]["keep_epochs"] == 2
