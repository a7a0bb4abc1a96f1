"""NTM-task training (train/ntm/loop.py): the target-only loss, a tiny NTM and a tiny LSTM that
learn, resume, the `edge-s2s export` of such a run, greedy through the runtime with the task
input forced equal to PyTorch, and `edge-s2s train ntm` refusing bad arguments in one line."""

import json

import numpy as np
import pytest
import torch

from edge_s2s.cli.app import run as cli
from edge_s2s.runtime.search import Greedy
from edge_s2s.runtime.tasks.generator import Generator
from edge_s2s.train.core.checkpoint import LAST, load_checkpoint
from edge_s2s.train.ntm.loop import (
    NTMTaskConfig,
    build_task_model,
    evaluate_bundle,
    evaluate_model,
    fixed_examples,
    greedy_outputs,
    load_ntm_task_run,
    score_outputs,
    target_nll,
    task_batch,
    train_ntm_task,
)
from edge_s2s.train.ntm.tasks import copy_example, recall_example, task_vocab

VOCAB = task_vocab()
TINY = dict(controller_size=24, memory_slots=24, memory_width=8, emb_dim=12, lstm_hidden=24, max_size=3,
            batch_size=8, lr=1e-2, eval_every=20, eval_sequences=8)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _cfg(out, **kw):
    return NTMTaskConfig(**{**TINY, "out_dir": str(out), **kw})


def test_the_mask_is_exactly_the_target_part():
    rng = np.random.default_rng(0)
    exs = [copy_example(rng, 3, VOCAB), recall_example(rng, 2, VOCAB), copy_example(rng, 1, VOCAB)]
    seqs, mask = task_batch(exs)
    for i, e in enumerate(exs):
        n, m = len(e.prefix), len(e.target)
        assert seqs[i, : n + m].tolist() == e.prefix + e.target
        assert mask[i].nonzero().flatten().tolist() == list(range(n, n + m))
        assert (seqs[i, n + m :] == VOCAB.pad_id).all()


@pytest.mark.parametrize("model", ["ntm", "lstm"])
def test_the_loss_ignores_prefix_and_padding_positions(model, tmp_path):
    torch.manual_seed(0)
    net = build_task_model(_cfg(tmp_path, model=model), len(VOCAB))
    rng = np.random.default_rng(1)
    seqs, mask = task_batch([copy_example(rng, int(n), VOCAB) for n in (1, 3, 2)])
    lp = net(seqs, torch.zeros(3, dtype=torch.long)).detach().requires_grad_(True)
    nll, n = target_nll(lp, seqs, mask)
    assert n == int(mask.sum()) and torch.isfinite(nll)  # padding's -inf log-prob never leaks in
    nll.backward()
    assert lp.grad[~mask].abs().max() == 0 and lp.grad[mask].abs().max() > 0
    changed = lp.detach() + torch.where(mask, 0.0, 5.0).unsqueeze(-1)  # any change off the target part
    assert torch.equal(target_nll(changed, seqs, mask)[0], nll.detach())
    moved = lp.detach() + torch.where(mask, 0.5, 0.0).unsqueeze(-1) * torch.randn_like(lp)
    assert not torch.equal(target_nll(moved, seqs, mask)[0], nll.detach())


@pytest.mark.parametrize("model", ["ntm", "lstm"])
def test_training_lowers_the_target_loss(model, tmp_path):
    cfg = _cfg(tmp_path / "run", model=model, steps=60)
    torch.manual_seed(cfg.seed)
    evals = fixed_examples("copy", [1, 2, 3], 24, 99, VOCAB)
    before = evaluate_model(build_task_model(cfg, len(VOCAB)), evals)["eval_loss"]
    run = train_ntm_task(cfg, progress=False)
    trained, _, _, _ = load_ntm_task_run(run, "last")
    after = evaluate_model(trained, evals)["eval_loss"]
    assert after < before - 0.5, (before, after)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [20, 40, 60]
    assert json.loads((run / "config.json").read_text())["task"] == "generate"


def test_resume_continues_bit_for_bit(tmp_path):
    kw = dict(eval_every=10, curriculum_steps=4)  # the default schedule depends on --steps
    straight = train_ntm_task(_cfg(tmp_path / "a", steps=30, **kw), progress=False)
    train_ntm_task(_cfg(tmp_path / "b", steps=20, **kw), progress=False)
    resumed = train_ntm_task(_cfg(tmp_path / "b", steps=30, **kw), resume=True, progress=False)
    a, b = load_checkpoint(straight / LAST), load_checkpoint(resumed / LAST)
    assert a["step"] == b["step"] == 30
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


@pytest.fixture(scope="module")
def copy_run_and_bundle(tmp_path_factory):
    """A tiny NTM trained on copy for a few dozen steps, exported with `edge-s2s export`."""
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("ntm-task")
    run = train_ntm_task(_cfg(d / "run", steps=40), progress=False)
    assert cli(["export", str(run), "--out", str(d / "bundle")]) == 0
    return run, d / "bundle"


def test_export_greedy_through_the_runtime_equals_pytorch(copy_run_and_bundle):
    run, bundle = copy_run_and_bundle
    model, vocab, cfg, _ = load_ntm_task_run(run)
    rt = Generator.load(bundle)
    assert rt.unit == "symbol" and rt.manifest.preprocessing["task"]["name"] == "copy"
    assert rt.manifest.max_length >= 2 * (4 * cfg.sizes[1] + 1)  # room for the 4x evaluation
    exs = fixed_examples("copy", [1, 3, 6, 12], 8, 5, vocab)  # inside and beyond the training range
    prefixes = [e.prefix for e in exs]
    hyps = rt.decode_encoded(rt.encode_conditions([0] * len(exs)), Greedy(), 40, prefix=prefixes)
    torch_out = greedy_outputs(model, prefixes, 40)
    for h, p, t in zip(hyps, prefixes, torch_out):
        assert list(h[0].ids[: len(p)]) == p
        got = list(h[0].ids[len(p):]) + ([vocab.eos_id] if h[0].finished else [])
        assert got == t[: 40 - len(p)]
    # the runtime evaluation scores exactly these outputs
    ev = evaluate_bundle(bundle, "copy", [3], n=6, seed=7)
    exs3 = fixed_examples("copy", [3], 6, 7 + 3, vocab)
    ref = score_outputs(greedy_outputs(model, [e.prefix for e in exs3], 8), exs3)
    assert ev[3]["bit_errors"] == pytest.approx(ref["bit_errors"]) and ev[3]["accuracy"] == ref["accuracy"]


def test_generate_cli_runs_the_task_from_a_typed_prompt(copy_run_and_bundle, capsys):
    run, bundle = copy_run_and_bundle
    model, vocab, _, _ = load_ntm_task_run(run)
    prompt = "3a 07 ff <delim>"
    ids = [vocab.index[t] for t in prompt.split()]
    expected = [vocab.tokens[i] for i in greedy_outputs(model, [ids], 8)[0] if i != vocab.eos_id]
    capsys.readouterr()
    assert cli(["generate", "-b", str(bundle), "--prompt", prompt, "--greedy", "--max-length", str(len(ids) + 8)]) == 0
    assert capsys.readouterr().out.split() == prompt.split() + expected


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("args,needle", [
    (["--task", "sort"], "--task must be one of copy, recall"),
    (["--model", "gru"], "--model must be one of ntm, lstm"),
    (["--controller", "gru"], "--controller must be one of lstm, feedforward"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--task", "recall", "--min-length", "1"], "recall needs sizes >= 2"),
    (["--max-length", "3", "--min-length", "5"], "--max-length 3 is below"),
    (["--memory-slots", "2"], "--shift-range 1 needs at least 3 memory slots"),
    (["--lr", "0"], "--lr must be a positive number"),
    (["--optimizer", "sgd"], "--optimizer must be one of adam, rmsprop"),
])
def test_train_ntm_bad_arguments_are_one_line(args, needle, tmp_path, capsys):
    assert cli(["train", "ntm", "--out", str(tmp_path / "r"), *args]) == 1
    assert needle in _error(capsys)
    assert not (tmp_path / "r").exists()


def test_train_ntm_resume_and_restart_mistakes_are_one_line(copy_run_and_bundle, tmp_path, capsys):
    assert cli(["train", "ntm", "--out", str(tmp_path / "none"), "--resume"]) == 1
    assert "cannot resume" in _error(capsys)
    run, _ = copy_run_and_bundle
    assert cli(["train", "ntm", "--out", str(run), "--steps", "1"]) == 1
    assert "already holds a training run" in _error(capsys)
