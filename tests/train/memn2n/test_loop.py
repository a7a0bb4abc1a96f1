"""`train babi` through the shared epoch loop: steps.jsonl, a stop after --max-steps and a --resume
that ends bit for bit where an uninterrupted run does, and resume mistakes in one line."""

import json

import pytest
import torch
from memory_stories import write_babi_root

from edge_s2s.cli.app import run
from edge_s2s.runtime.tools.run_logs import read_metrics, read_steps
from edge_s2s.train.core.checkpoint import LAST, load_checkpoint

ARGS = ["--tasks", "1", "--hops", "1", "--epochs", "3", "--memory-size", "10", "--seed", "2", "--no-progress"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_babi_root(tmp_path_factory.mktemp("babi"), n_train=64, n_test=16, seed=5)


def test_babi_resumes_bit_for_bit_and_logs_every_step(root, tmp_path, capsys):
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert run(["train", "babi", "--data-root", str(root), "--out", str(straight), *ARGS]) == 0
    assert run(["train", "babi", "--data-root", str(root), "--out", str(cut), "--max-steps", "43", *ARGS]) == 0
    assert load_checkpoint(cut / LAST)["step"] == 43
    # resume takes the run's saved settings; an option typed again with another value (--hops) is refused
    assert run(["train", "babi", "--out", str(cut), "--resume", "--no-progress", "--hops", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--hops 3" in err[0] and "--hops 1" in err[0] and load_checkpoint(cut / LAST)["step"] == 43
    assert run(["train", "babi", "--out", str(cut), "--resume", "--no-progress", "--hops", "1", "--seed", "2"]) == 0
    a, b = load_checkpoint(straight / LAST), load_checkpoint(cut / LAST)
    assert a["step"] == b["step"] > 43
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    strip = [{k: v for k, v in m.items() if k != "seconds"} for m in read_metrics(straight)]
    assert strip == [{k: v for k, v in m.items() if k != "seconds"} for m in read_metrics(cut)]
    assert [m["phase"] for m in read_metrics(straight)][-1] == "softmax"
    assert [d["step"] for d in read_steps(cut)] == list(range(1, a["step"] + 1))
    assert json.loads((cut / "results.json").read_text())["test_error"].keys() == {"1"}
    assert not (straight / "best.pt").exists()  # a memory network keeps the last network, as its paper


def test_babi_resume_mistakes_are_one_line(root, tmp_path, capsys):
    assert run(["train", "babi", "--out", str(tmp_path / "none"), "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot resume" in err[0]


def test_the_data_root_comes_from_edge_s2s_data(root, tmp_path, monkeypatch, capsys):
    """A regular install has no ../shared/data beside it: EDGE_S2S_DATA (or --data-root) says where."""
    monkeypatch.setenv("EDGE_S2S_DATA", str(tmp_path / "nowhere"))
    assert run(["train", "babi", "--out", str(tmp_path / "r0"), *ARGS]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--data-root DIR, or set EDGE_S2S_DATA" in err[0] and "nowhere" in err[0]
    data = tmp_path / "data"
    data.mkdir()
    (data / "babi").symlink_to(root)
    monkeypatch.setenv("EDGE_S2S_DATA", str(data))
    assert run(["train", "babi", "--out", str(tmp_path / "r1"), "--max-steps", "2", *ARGS]) == 0
