"""Atomic checkpoints, clear errors for broken ones, and bit-for-bit resume."""

import os

import pytest
import torch
from toy import tiny_config

from edge_s2s.runtime.tools.run_logs import read_metrics
from edge_s2s.train.core.checkpoint import CheckpointError, atomic_write_bytes, load_checkpoint, save_checkpoint
from edge_s2s.train.core.errors import RunError
from edge_s2s.train.translate.loop import train_translator


def test_atomic_write_never_leaves_a_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    save_checkpoint(target, {"model": {"w": torch.ones(3)}, "train_config": {}, "step": 1})
    before = target.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, {"model": {"w": torch.zeros(3)}, "train_config": {}, "step": 2})
    monkeypatch.undo()
    assert target.read_bytes() == before  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left behind
    assert load_checkpoint(target)["step"] == 1


def test_atomic_write_honours_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "config.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_atomic_write_replaces(tmp_path):
    p = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(p, b"one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two" and len(list(p.parent.iterdir())) == 1


@pytest.mark.parametrize("mangle", ["truncate", "garbage", "empty", "foreign"])
def test_broken_checkpoint_is_one_clear_error(tmp_path, mangle):
    p = tmp_path / "last.pt"
    save_checkpoint(p, {"model": {"w": torch.randn(100, 100)}, "train_config": {}, "step": 3})
    data = p.read_bytes()
    if mangle == "truncate":
        p.write_bytes(data[: len(data) // 2])
    elif mangle == "garbage":
        p.write_bytes(os.urandom(1000))
    elif mangle == "empty":
        p.write_bytes(b"")
    else:
        torch.save({"weights": 1}, p)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(p)
    msg = str(e.value)
    assert str(p) in msg and "\n" not in msg
    assert isinstance(e.value, ValueError)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


@pytest.mark.slow
def test_resume_is_bit_for_bit(toy_tsv, tmp_path):
    # 10 steps straight vs 5 + resume + 5; 14 batches an epoch, checkpoint every 3 steps,
    # dropout on: model, optimizer, RNG and loader position must all be restored.
    kw = dict(epochs=2, checkpoint_every=3, dropout=0.2, val_bleu_max=0)
    straight = train_translator(tiny_config(toy_tsv, tmp_path / "a", max_steps=10, **kw), progress=False)
    half = train_translator(tiny_config(toy_tsv, tmp_path / "b", max_steps=5, **kw), progress=False)
    assert load_checkpoint(half / "last.pt")["step"] == 5
    resumed = train_translator(tiny_config(toy_tsv, tmp_path / "b", max_steps=10, **kw), resume=True, progress=False)
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert a["step"] == b["step"] == 10
    for name, t in a["model"].items():
        assert torch.equal(t, b["model"][name]), name
    # across an epoch end too (validation in between), to the end of the run
    full = train_translator(tiny_config(toy_tsv, tmp_path / "c", **kw), progress=False)
    resumed2 = train_translator(tiny_config(toy_tsv, tmp_path / "b", **kw), resume=True, progress=False)
    a, b = load_checkpoint(full / "last.pt"), load_checkpoint(resumed2 / "last.pt")
    assert a["step"] == b["step"] == 28
    for name, t in a["model"].items():
        assert torch.equal(t, b["model"][name]), name
    strip = [{k: v for k, v in m.items() if k != "seconds"} for m in read_metrics(full)]
    assert strip == [{k: v for k, v in m.items() if k != "seconds"} for m in read_metrics(resumed2)]


def test_start_and_resume_errors(toy_tsv, tmp_path):
    with pytest.raises(RunError, match="cannot resume"):
        train_translator(tiny_config(toy_tsv, tmp_path / "x"), resume=True, progress=False)
    run = train_translator(tiny_config(toy_tsv, tmp_path / "y", max_steps=1, val_bleu_max=0), progress=False)
    with pytest.raises(RunError, match="already holds a training run"):
        train_translator(tiny_config(toy_tsv, run), progress=False)
