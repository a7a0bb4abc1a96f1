"""`edge-s2s plot runs/x [runs/y]`: learning curves of real (tiny) training runs, and bad input as one line."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from edge_s2s.cli.app import run
from edge_s2s.cli.plot_cmd import learning_curve_panels, read_run
from edge_s2s.runtime.pictures.line_plot import PALETTE

pytestmark = pytest.mark.slow

TINY = ["--batch-size", "16", "--lr", "0.01", "--emb-dim", "16", "--enc-hidden", "16", "--dec-hidden", "32",
        "--att-dim", "16", "--max-length", "8", "--vocab-min-count", "1", "--no-progress"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, toy_tsv):
    """Two tiny translate runs (3 epochs each, different seeds), trained through the CLI."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("plot-runs")
    for seed in (1, 2):
        assert run(["train", "translate", "--data", str(toy_tsv), "--out", str(root / f"seed{seed}"), "--epochs", "3",
                    "--seed", str(seed), *TINY]) == 0
    return root / "seed1", root / "seed2"


def _error(capsys) -> str:
    out = capsys.readouterr()
    assert out.out == ""
    err = out.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _colour_pixels(png, colour) -> int:
    with Image.open(png) as im:
        return int(np.all(np.asarray(im.convert("RGB")) == np.array(colour, np.uint8), axis=-1).sum())


def test_plot_two_runs_overlaid(two_runs, tmp_path, capsys):
    out = tmp_path / "curves.png"
    capsys.readouterr()
    assert run(["plot", *map(str, two_runs), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"wrote {out}: 3 panels (training loss") and "validation loss, validation BLEU" in said
    assert "seed1 3 evaluations" in said and "seed2 3 evaluations" in said
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 3 * 500
    assert _colour_pixels(out, PALETTE[0]) > 200 and _colour_pixels(out, PALETTE[1]) > 200  # both runs drawn
    assert _colour_pixels(out, PALETTE[2]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temp file left


def test_panels_follow_the_logs(two_runs):
    log = read_run(two_runs[0])
    metrics = [json.loads(line) for line in (two_runs[0] / "metrics.jsonl").read_text().splitlines()]
    panels = learning_curve_panels([log])
    assert [p.title.split(" (")[0] for p in panels] == ["training loss", "validation loss", "validation BLEU"]
    assert panels[1].series["seed1"] == [(m["epoch"], m["val_loss"]) for m in metrics]
    assert panels[2].series["seed1"] == [(m["epoch"], m["val_bleu"]) for m in metrics]
    assert panels[1].x_label == "epoch" and panels[0].x_label == "optimizer step"
    # Per step from steps.jsonl (one line per step), every step kept with --smooth 1.
    assert (two_runs[0] / "steps.jsonl").is_file()
    raw = learning_curve_panels([log], smooth=1)[0].series["seed1"]
    assert [x for x, _ in raw] == list(range(1, metrics[-1]["step"] + 1))
    assert raw == [(d["step"], d["loss"]) for d in log.steps]
    means = learning_curve_panels([log], smooth=5)[0]
    assert len(means.series["seed1"]) == -(-len(raw) // 5) and "mean of 5 steps" in means.title
    assert means.series["seed1"][0] == (5, pytest.approx(sum(y for _, y in raw[:5]) / 5))


def test_without_steps_file_the_loss_is_per_epoch(two_runs, tmp_path, capsys):
    old = tmp_path / "old-run"
    shutil.copytree(two_runs[0], old)
    (old / "steps.jsonl").unlink(missing_ok=True)
    with open(old / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 4, "step": 6')  # a line a kill cut short is skipped
    panel = learning_curve_panels([read_run(old)])[0]
    metrics = [json.loads(line) for line in (two_runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert panel.title == "training loss (per epoch)"
    assert panel.series["old-run"] == [(m["step"], m["train_loss"]) for m in metrics]
    capsys.readouterr()
    assert run(["plot", str(old), "-o", str(tmp_path / "c.png"), "--metric", "seconds", "--metric", "lr"]) == 1
    assert "no run logged 'lr'" in _error(capsys)  # lr is a steps.jsonl key, and this run has none


def test_same_directory_names_get_their_parents(two_runs, tmp_path, capsys):
    a, b = tmp_path / "a" / "run", tmp_path / "b" / "run"
    shutil.copytree(two_runs[0], a)
    shutil.copytree(two_runs[1], b)
    capsys.readouterr()
    assert run(["plot", str(a), str(b), "-o", str(tmp_path / "c.png"), "--metric", "lr"]) == 0
    said = capsys.readouterr().out
    assert "a/run 3 evaluations" in said and "b/run 3 evaluations" in said and "panels (training loss" in said
    assert ", lr)" in said  # a steps.jsonl key drawn per step


def test_bad_input_is_one_line(two_runs, tmp_path, capsys):
    good, out = str(two_runs[0]), str(tmp_path / "c.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    started = tmp_path / "started"
    started.mkdir()
    (started / "metrics.jsonl").write_text("")
    capsys.readouterr()
    cases = [
        (["plot", str(tmp_path / "nope"), "-o", out], "does not exist"),
        (["plot", str(two_runs[0] / "last.pt"), "-o", out], "is a file, not a run directory"),
        (["plot", str(empty), "-o", out], "it is not a training run directory"),
        (["plot", str(started), "-o", out], "has logged nothing yet"),
        (["plot", good, "-o", str(tmp_path / "missing" / "c.png")], "does not exist; choose a writable path"),
        (["plot", good, "-o", str(tmp_path)], "is a directory"),
        (["plot", good, "-o", out, "--metric", "val_cider"], "choose --metric from"),
        (["plot", good, "-o", out, "--smooth", "-1"], "--smooth must be >= 0"),
    ]
    for argv, words in cases:
        assert run(argv) == 1, argv
        assert words in _error(capsys), argv
    assert not (tmp_path / "c.png").exists()
