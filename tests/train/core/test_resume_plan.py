"""`plan_resume` (train/core/run_dir.py): what a `--resume` continues, decided from the run's own
config.json and last.pt, on real tiny translation runs: saved settings win, a typed setting that
disagrees is one RunError line, the length grows only with extend, max_steps is a stop and not
the end, a finished run says so."""

import json

import pytest
from toy import tiny_config

from edge_s2s.train import train_translator
from edge_s2s.train.core.checkpoint import LAST, load_checkpoint
from edge_s2s.train.core.errors import RunError
from edge_s2s.train.core.run_dir import Given, load_run_config, plan_resume, save_schedule
from edge_s2s.train.translate.config import TrainConfig

CMD = "edge-s2s train translate --out RUN"


def _kw():
    return dict(batch_size=64, val_bleu_max=0)


@pytest.fixture(scope="module")
def paused(toy_tsv, tmp_path_factory):
    """A run configured for 3 epochs, stopped by its max_steps at step 2 (inside epoch 1)."""
    return train_translator(tiny_config(toy_tsv, tmp_path_factory.mktemp("paused") / "run", epochs=3, max_steps=2,
                                        **_kw()), progress=False)


@pytest.fixture(scope="module")
def finished(toy_tsv, tmp_path_factory):
    return train_translator(tiny_config(toy_tsv, tmp_path_factory.mktemp("finished") / "run", epochs=1, **_kw()),
                            progress=False)


def _plan(run, given=(), extend=False, **asked):
    """Plan a resume of `run` as the CLI does: `asked` is the config built from the command line
    (here: the saved one with the typed values set), `given` the typed options."""
    saved = load_run_config(run, TrainConfig, "translate")
    cfg = load_run_config(run, TrainConfig, "translate")
    for path, value in asked.items():
        obj = cfg
        *parents, leaf = path.split("__")
        for name in parents:
            obj = getattr(obj, name)
        setattr(obj, leaf, value)
    return plan_resume(run, lambda: saved, cfg, list(given), extend, CMD)


def test_a_paused_run_goes_on_to_its_own_epochs(paused):
    assert load_checkpoint(paused / LAST)["step"] == 2
    plan = _plan(paused)
    assert plan.finished is None
    assert plan.config.epochs == 3  # the saved length, whatever a command line's default is
    assert plan.config.max_steps == 0  # the stop at step 2 was reached: it is not the end of the run
    assert plan.config.model.emb_dim == 16 and plan.config.out_dir == str(paused)


def test_a_saved_stop_not_yet_reached_is_kept_and_a_typed_one_replaces_it(paused):
    save_schedule(paused, {"max_steps": 4})
    try:
        assert _plan(paused).config.max_steps == 4
        assert _plan(paused, [Given("--max-steps", 3, ("max_steps",))], max_steps=3).config.max_steps == 3
        with pytest.raises(RunError, match=r"--max-steps 2: .* already at step 2"):
            _plan(paused, [Given("--max-steps", 2, ("max_steps",))], max_steps=2)
    finally:
        save_schedule(paused, {"max_steps": 2})
    assert json.loads((paused / "config.json").read_text())["train"]["max_steps"] == 2


@pytest.mark.parametrize("flag,path,value,saved", [("--emb-dim", "model__emb_dim", 32, "16"),
                                                   ("--attention", "model__attention", "dot", "general"),
                                                   ("--lr", "lr", 0.5, "0.01"),
                                                   ("--batch-size", "batch_size", 8, "64")])
def test_a_typed_setting_that_differs_is_one_line_naming_flag_saved_value_and_fix(paused, flag, path, value, saved):
    with pytest.raises(RunError) as e:
        _plan(paused, [Given(flag, value, (path.replace("__", "."),))], **{path: value})
    msg = str(e.value)
    assert "\n" not in msg
    assert f"{flag} {value} conflicts" in msg and f"trained with {flag} {saved}" in msg and "--out ELSEWHERE" in msg


def test_the_same_value_as_saved_is_fine(paused):
    given = [Given("--emb-dim", 16, ("model.emb_dim",)), Given("--lr", 0.01, ("lr",)), Given("--epochs", 3, ("epochs",))]
    plan = _plan(paused, given, model__emb_dim=16, lr=0.01, epochs=3)
    assert plan.finished is None and plan.config.epochs == 3


def test_the_length_changes_only_with_extend_and_never_shrinks(paused):
    with pytest.raises(RunError, match=r"--epochs 5 differs from the run's --epochs 3: .*--resume --extend --epochs 5"):
        _plan(paused, [Given("--epochs", 5, ("epochs",))], epochs=5)
    assert _plan(paused, [Given("--epochs", 5, ("epochs",))], extend=True, epochs=5).config.epochs == 5
    with pytest.raises(RunError, match="not shortened"):
        _plan(paused, [Given("--epochs", 2, ("epochs",))], extend=True, epochs=2)
    with pytest.raises(RunError, match=r"--extend needs .* --epochs N"):
        _plan(paused, extend=True)


def test_a_finished_run_says_so_and_how_to_extend(finished):
    plan = _plan(finished)
    assert plan.config is None
    assert "is finished" in plan.finished and f"{CMD} --resume --extend --epochs N" in plan.finished
    assert _plan(finished, [Given("--epochs", 2, ("epochs",))], extend=True, epochs=2).config.epochs == 2


def test_library_resume_records_the_new_length_in_config_json(toy_tsv, tmp_path):
    """A later plain `--resume` must continue the plan the last session had, so it is saved."""
    run = train_translator(tiny_config(toy_tsv, tmp_path / "r", epochs=1, max_steps=1, **_kw()), progress=False)
    train_translator(tiny_config(toy_tsv, run, epochs=2, max_steps=3, **_kw()), resume=True, progress=False)
    saved = json.loads((run / "config.json").read_text())["train"]
    assert (saved["epochs"], saved["max_steps"]) == (2, 3)
    assert load_checkpoint(run / LAST)["step"] == 3
