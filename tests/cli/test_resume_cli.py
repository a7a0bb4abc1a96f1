"""`edge-s2s train <task> --resume` keeps its word (issue 18, item 5), on real tiny runs:

* the README's line (`edge-s2s train translate --out RUN --resume`) continues a stopped run to the
  epochs it was configured with, not to the command line's default;
* an option typed again with another value is one `error:` line naming the flag, the saved value
  and the fix, exit 1, the run untouched; the same value is fine;
* a finished run says so (exit 0, one line); it trains longer only with `--extend` and a new total.
"""

import json

import pytest
from memory_stories import write_babi_root
from paths import TEST_DATA

from edge_s2s.cli.app import run
from edge_s2s.runtime.tools.run_logs import read_metrics
from edge_s2s.train.core.checkpoint import LAST, load_checkpoint

TINY = ["--emb-dim", "8", "--enc-hidden", "8", "--dec-hidden", "16", "--att-dim", "8", "--max-length", "8",
        "--batch-size", "64", "--vocab-min-count", "1", "--no-progress"]


def _position(run_dir) -> dict:
    return load_checkpoint(run_dir / LAST)["position"]


def _saved(run_dir) -> dict:
    return json.loads((run_dir / "config.json").read_text())["train"]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


@pytest.fixture(scope="module")
def finished_run(toy_tsv, tmp_path_factory):
    """A translate run that trained all of its 1 epoch."""
    out = tmp_path_factory.mktemp("resume-cli") / "run"
    assert run(["train", "translate", "--data", str(toy_tsv), "--out", str(out), "--epochs", "1", *TINY]) == 0
    return out


def test_the_readme_resume_line_continues_to_the_configured_epochs(toy_tsv, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", "translate", "--data", str(toy_tsv), "--out", str(out), "--epochs", "2", "--max-steps", "2",
                *TINY]) == 0
    assert _position(out)["step"] == 2 and _position(out)["epoch"] == 0  # stopped inside epoch 1
    # the README's line, word for word: nothing but --out and --resume
    assert run(["train", "translate", "--out", str(out), "--resume"]) == 0
    assert [m["epoch"] for m in read_metrics(out)] == [1, 2]  # the run's 2 epochs, not the option's default 10
    pos = _position(out)
    per_epoch = read_metrics(out)[0]["step"]
    assert pos["epoch"] == 2 and pos["step"] == 2 * per_epoch
    assert _saved(out)["epochs"] == 2
    capsys.readouterr()
    # done: the same line now says so in one line, trains nothing and succeeds (a requeued job may rerun it)
    assert run(["train", "translate", "--out", str(out), "--resume"]) == 0
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and "is finished" in said[0] and "--resume --extend --epochs N" in said[0]
    assert _position(out)["step"] == 2 * per_epoch


def test_a_finished_run_trains_longer_only_with_extend(finished_run, tmp_path, capsys):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    steps = _position(out)["step"]
    assert run(["train", "translate", "--out", str(out), "--resume", "--epochs", "2", "--no-progress"]) == 1
    line = _one_error(capsys)
    assert "--epochs 2" in line and "--epochs 1" in line and "--extend" in line
    assert _position(out)["step"] == steps
    assert run(["train", "translate", "--out", str(out), "--extend", "--epochs", "2"]) == 1
    assert "--resume" in _one_error(capsys)
    assert run(["train", "translate", "--out", str(out), "--resume", "--extend", "--epochs", "2", "--no-progress"]) == 0
    assert [m["epoch"] for m in read_metrics(out)] == [1, 2] and _saved(out)["epochs"] == 2
    # the same line again (say after an interruption) is a total, not two more epochs: nothing left to do
    capsys.readouterr()
    assert run(["train", "translate", "--out", str(out), "--resume", "--extend", "--epochs", "2", "--no-progress"]) == 0
    assert "is finished" in capsys.readouterr().out and len(read_metrics(out)) == 2


@pytest.mark.parametrize("typed,saved", [(["--emb-dim", "32"], "--emb-dim 8"),
                                         (["--attention", "dot"], "--attention general"),
                                         (["--lr", "0.5"], "--lr 0.001"),
                                         (["--decoder", "ntm"], "--decoder lstm"),
                                         (["--feed", "scheduled"], "feed.mode = reference"),
                                         (["--max-length", "20"], "max_source_length = 8")])
def test_a_conflicting_option_is_one_line_and_leaves_the_run_alone(finished_run, capsys, typed, saved):
    before = _position(finished_run)
    rc = run(["train", "translate", "--out", str(finished_run), "--resume", "--extend", "--epochs", "2", *typed,
              "--no-progress"])
    assert rc == 1
    line = _one_error(capsys)
    assert f"{typed[0]} {typed[1]} conflicts" in line and saved in line and "--out ELSEWHERE" in line
    assert _position(finished_run) == before


def test_options_typed_with_their_saved_values_are_fine(finished_run, capsys):
    assert run(["train", "translate", "--out", str(finished_run), "--resume", "--epochs", "1", "--emb-dim", "8",
                "--attention", "general", "--batch-size", "64", "--no-progress"]) == 0
    assert "is finished" in capsys.readouterr().out


# --- every family: a short run stopped by --max-steps, the plain resume, a conflict, --extend ---

FAMILIES = {
    "pixels": dict(start=["--data", "digits", "--max-train", "128", "--hidden", "8", "--emb-dim", "4",
                          "--batch-size", "64"], stop=["--max-steps", "1"], length=("--epochs", 2, "epoch"),
                   conflict=(["--hidden", "16"], "--hidden 8")),
    "lm": dict(start=["--corpus", str(TEST_DATA / "kjv-genesis-1-3.txt"), "--hidden", "8", "--emb-dim", "4",
                      "--batch-size", "64", "--max-train", "64", "--max-tokens", "40"],
               stop=["--max-steps", "1"], length=("--epochs", 2, "epoch"), conflict=(["--unit", "word"], "--unit char")),
    "ntm": dict(start=["--steps", "4", "--eval-every", "2", "--batch-size", "2", "--controller-size", "8",
                       "--memory-slots", "8", "--memory-width", "4", "--max-length", "3", "--emb-dim", "4"],
                stop=None, length=("--steps", 4, "step"), conflict=(["--memory-slots", "16"], "--memory-slots 8")),
    "babi": dict(start=["--tasks", "1", "--hops", "1", "--dim", "8", "--memory-size", "10"],
                 stop=["--max-steps", "3"], length=("--epochs", 1, None), conflict=(["--dim", "20"], "--dim 8")),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_resumes_as_configured(family, tmp_path, capsys):
    f = FAMILIES[family]
    out = tmp_path / "run"
    flag, total, counts = f["length"]
    extra = ["--data-root", str(write_babi_root(tmp_path / "babi", n_train=64, n_test=16, seed=5))] \
        if family == "babi" else []
    start = ["train", family, "--out", str(out), *f["start"], *extra, flag, str(total), "--no-progress"]
    assert run(start + (f["stop"] or [])) == 0
    stopped = _position(out)
    if f["stop"]:
        assert not stopped["done"] and stopped["step"] == int(f["stop"][1])
        assert run(["train", family, "--out", str(out), "--resume", "--no-progress"]) == 0
        assert _position(out)["step"] > stopped["step"]
    done = _position(out)
    if counts:
        assert done[counts] == total  # the run's own length, not the option's default
    capsys.readouterr()
    assert run(["train", family, "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "is finished" in capsys.readouterr().out and _position(out) == done
    typed, saved = f["conflict"]
    assert run(["train", family, "--out", str(out), "--resume", *typed, "--no-progress"]) == 1
    line = _one_error(capsys)
    assert f"{typed[0]} {typed[1]} conflicts" in line and saved in line
    assert run(["train", family, "--out", str(out), "--resume", flag, str(total + 1), "--no-progress"]) == 1
    assert "--extend" in _one_error(capsys)
    assert run(["train", family, "--out", str(out), "--resume", "--extend", flag, str(total + 1), "--no-progress"]) == 0
    grown = _position(out)
    assert grown["step"] > done["step"]
    if counts:
        assert grown[counts] == total + 1
    assert "is finished" not in capsys.readouterr().out


def test_lm_and_pixels_runs_are_not_resumed_by_the_other_command(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", "pixels", "--out", str(out), *FAMILIES["pixels"]["start"], "--epochs", "1",
                "--no-progress"]) == 0
    capsys.readouterr()
    assert run(["train", "lm", "--out", str(out), "--resume", "--no-progress"]) == 1
    assert "edge-s2s train pixels" in _one_error(capsys)


def test_scst_resumes_as_configured(finished_run, tmp_path, capsys):
    out = tmp_path / "scst"
    assert run(["train", "scst", "--from", str(finished_run), "--out", str(out), "--epochs", "1", "--max-steps", "1",
                "--no-progress"]) == 0
    assert _position(out)["step"] == 1
    assert run(["train", "scst", "--out", str(out), "--resume", "--lr", "0.1", "--no-progress"]) == 1
    line = _one_error(capsys)
    assert "--lr 0.1 conflicts" in line and "--lr 5e-05" in line
    assert run(["train", "scst", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert _position(out)["epoch"] == 1  # its 1 epoch, not the option's default 5
    saved = json.loads((out / "config.json").read_text())
    assert saved["scst"]["epochs"] == saved["train"]["epochs"] == 1


def test_caption_resume_refuses_a_conflict_and_knows_it_is_finished(caption_run, capsys):
    before = _position(caption_run)
    assert run(["train", "caption", "--out", str(caption_run), "--resume", "--dec-hidden", "999", "--no-progress"]) == 1
    assert "--dec-hidden 999 conflicts" in _one_error(capsys)
    assert run(["train", "caption", "--out", str(caption_run), "--resume", "--no-progress"]) == 0
    assert "is finished" in capsys.readouterr().out and _position(caption_run) == before
