"""Checkpoints are untrusted input: a hostile best.pt / last.pt never runs code (export, --resume,
train scst all refuse it in one line), and a checkpoint of an older edge-s2s, with numpy objects
pickled inside, is refused with the command that converts it once."""

import random
import shutil

import numpy as np
import pytest
import torch
from toy import tiny_config

from edge_s2s.cli.app import run
from edge_s2s.train.core.checkpoint import BEST, FORMAT, LAST, CheckpointError, load_checkpoint
from edge_s2s.train.translate.loop import train_translator


class _Hostile:
    """Unpickling this runs code: it writes `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.fixture(scope="module")
def trained(toy_tsv, tmp_path_factory):
    return train_translator(tiny_config(toy_tsv, tmp_path_factory.mktemp("ck") / "run", epochs=1), progress=False)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("how", ["export", "resume", "scst"])
def test_a_hostile_checkpoint_never_runs_code(trained, tmp_path, capsys, how):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    marker = tmp_path / "marker"
    ck = load_checkpoint(run_dir / LAST)
    ck["model"] = {"weights": _Hostile(marker)}
    for name in (BEST, LAST):
        torch.save(ck, str(run_dir / name))
    torch.load(str(run_dir / LAST), weights_only=False)  # the old way runs it: this test can fail
    assert marker.exists()
    marker.unlink()
    capsys.readouterr()
    args = {"export": ["export", str(run_dir), "--out", str(tmp_path / "b")],
            "resume": ["train", "translate", "--out", str(run_dir), "--resume", "--no-progress"],
            "scst": ["train", "scst", "--from", str(run_dir), "--out", str(tmp_path / "s"), "--no-progress"]}[how]
    assert run(args) == 1
    line = _one_line(capsys)
    assert "pickled Python objects" in line and "convert-checkpoint" in line
    assert not marker.exists()


def test_an_old_checkpoint_is_refused_then_converted_once(trained, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    ck = load_checkpoint(run_dir / LAST)
    np.random.seed(5)
    ck["rng"]["numpy"] = np.random.get_state()  # how edge-s2s 0.1 saved it: numpy objects inside
    torch.save(ck, str(run_dir / LAST))
    with pytest.raises(CheckpointError, match="convert-checkpoint"):
        load_checkpoint(run_dir / LAST)
    assert run(["convert-checkpoint", str(run_dir / LAST)]) == 0
    assert "converted" in capsys.readouterr().out
    back = load_checkpoint(run_dir / LAST)
    assert back["format"] == FORMAT and back["step"] == ck["step"]
    assert torch.equal(back["rng"]["numpy"]["keys"], torch.from_numpy(ck["rng"]["numpy"][1].astype(np.int64)))
    # and the converted run resumes, drawing the same numpy numbers it saved
    assert run(["train", "translate", "--out", str(run_dir), "--resume", "--extend", "--epochs", "2", "--no-progress"]) == 0


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path):
    from edge_s2s.train.core.checkpoint import rng_state, save_checkpoint, set_rng_state

    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "x.pt", {"model": {}, "train_config": {}, "step": 0, "rng": rng_state()})
    want = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_state(load_checkpoint(tmp_path / "x.pt")["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == want
