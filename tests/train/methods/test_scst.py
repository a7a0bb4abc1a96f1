"""Self-critical sequence training: the rewards, the sampled log-probs, and real fine-tunes that export."""

import json

import numpy as np
import pytest
import torch
from toy import tiny_config

from edge_s2s.train.caption.scst import FAMILY as CAPTION
from edge_s2s.train.translate.scst import FAMILY as TRANSLATE

SCST_FAMILIES = {"translate": TRANSLATE, "caption": CAPTION}


def test_cider_d_matches_pycocoevalcap():
    from pycocoevalcap.cider.cider import Cider

    from edge_s2s.train.methods.rewards import CiderD

    gts = {"0": ["a red circle", "a circle that is red", "red round thing"],
           "1": ["a blue square on grass", "a square that is blue"],
           "2": ["a dog runs in the park", "the dog is running"],
           "3": ["a cat sits", "a cat on a mat"]}
    res = {"0": ["a red circle"], "1": ["a red square"], "2": ["a dog is running in a park"], "3": ["dog"]}
    _, expected = Cider().compute_score(gts, res)
    ids = sorted(gts)
    ours = CiderD([gts[k] for k in ids])
    got = [ours.score(res[k][0], i) for i, k in enumerate(ids)]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert got[0] > got[1] > got[3] == 0.0


def test_caption_reward_prefers_the_right_image():
    from edge_s2s.train.methods.rewards import CaptionReward

    reward = CaptionReward([["A red circle.", "a circle that is red"], ["a blue square", "a square that is blue"],
                            ["a green triangle", "a triangle that is green"]])
    r = reward(["a red circle", "a red circle"], [0, 1])
    assert r[0] > 1.0 and r[1] < r[0]


def test_sentence_bleu_reward_identical_vs_different():
    from edge_s2s.train.methods.rewards import BleuReward

    reward = BleuReward(["The cat sat on the mat .", "A dog barks loudly ."])
    r = reward(["the cat sat on the mat .", "a fish swims .", "the cat sat on a mat ."], [0, 0, 0])
    assert r[0] == pytest.approx(1.0)
    assert 0.0 <= r[1] < 0.2
    assert r[1] < r[2] < r[0]


def _toy_translator(tmp_path, toy_tsv, epochs=3):
    from edge_s2s.train import train_translator

    cfg = tiny_config(toy_tsv, tmp_path / "xe", epochs=epochs, dropout=0.0)
    return train_translator(cfg, progress=False), cfg


def test_sampled_logprob_equals_teacher_forced(tmp_path, toy_tsv):
    from edge_s2s.runtime.text import Vocab
    from edge_s2s.train.methods.scst import rollout
    from edge_s2s.train.translate.data import collate, load_dataset
    from edge_s2s.train.translate.loop import build_model

    cfg = tiny_config(toy_tsv, tmp_path / "x", dropout=0.0)
    data = load_dataset(cfg)
    vocab: Vocab = data.vocab
    torch.manual_seed(0)
    model = build_model(cfg, len(vocab))
    b = collate(data.train[:5], vocab, list(range(5)))
    enc = model.encode(b.src, b.src_lengths)
    K = 3
    s = rollout(model, enc, K, 7, vocab.bos_id, vocab.eos_id)
    assert s.tokens.shape[0] == 5 * K and s.logprob.requires_grad
    # teacher forcing on the sampled tokens: <s> + tokens as input, tokens as target (0 = ignored)
    tgt_out = s.tokens
    tgt_in = torch.cat([torch.full((tgt_out.size(0), 1), vocab.bos_id), tgt_out[:, :-1]], dim=1)
    src = b.src.repeat_interleave(K, 0)
    lp, _ = model(src, b.src_lengths.repeat_interleave(K), tgt_in)
    tf = lp.gather(2, tgt_out.unsqueeze(2)).squeeze(2).masked_fill(~s.mask, 0.0).sum(1)
    torch.testing.assert_close(s.logprob, tf, rtol=1e-5, atol=1e-5)
    # the greedy rollout (the SCST baseline) is the runtime's greedy search over the same model
    from edge_s2s.runtime.search import Greedy
    from edge_s2s.train.methods.scst import sentence_ids
    from edge_s2s.train.translate.decode import decode_ids, source_ids

    model.eval()
    with torch.no_grad():
        g = rollout(model, model.encode(b.src, b.src_lengths), 1, 7, vocab.bos_id, vocab.eos_id, greedy=True)
    hyps = decode_ids(model, [source_ids(p.source, data.text) for p in data.train[:5]], Greedy(), max_length=7)
    assert sum(len(h[0].ids) for h in hyps) > 5  # real decodes, not empty ones
    for row, mask, h in zip(g.tokens, g.mask, hyps):
        assert sentence_ids(row[mask], vocab.eos_id) == [i for i in h[0].ids if i != vocab.eos_id]


def _read(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]


def test_scst_translator_raises_reward_and_exports(tmp_path, toy_tsv):
    from edge_s2s.export.translate import export_bundle
    from edge_s2s.runtime.tasks.seq2seq import Seq2Seq
    from edge_s2s.train.methods.scst import ScstConfig, train_scst

    torch.set_num_threads(1)
    src, _ = _toy_translator(tmp_path, toy_tsv, epochs=8)
    out = tmp_path / "scst"
    train_scst(ScstConfig(source=str(src), out_dir=str(out), epochs=3, lr=1e-3, samples=4), SCST_FAMILIES, progress=False)
    hist = _read(out)
    assert len(hist) == 3
    assert hist[-1]["mean_reward"] > hist[0]["mean_reward"]
    doc = json.loads((out / "config.json").read_text())
    assert doc["task"] == "translate" and doc["scst"]["source"] == str(src)
    assert hist[-1]["val_bleu"] >= doc["scst"]["start"]["val_bleu"]  # the greedy decode did not get worse
    assert (out / "tokens.txt").read_text() == (src / "tokens.txt").read_text()
    report = export_bundle(out, tmp_path / "bundle")
    assert report.parity["search"]
    assert Seq2Seq.load(tmp_path / "bundle").manifest.task == "translate"
    # --resume extends the finished run by one epoch
    train_scst(ScstConfig(out_dir=str(out), epochs=4), SCST_FAMILIES, resume=True, progress=False)
    assert [h["epoch"] for h in _read(out)] == [1, 2, 3, 4]


def test_scst_captioner_raises_reward_and_exports(tmp_path, caption_run, caption_cache):
    from edge_s2s.export.caption import export_caption_bundle
    from edge_s2s.train.methods.scst import ScstConfig, train_scst

    torch.set_num_threads(1)
    out = tmp_path / "scst"
    train_scst(ScstConfig(source=str(caption_run), out_dir=str(out), epochs=3, lr=5e-4, samples=3), SCST_FAMILIES,
               progress=False, cache_dir=caption_cache)
    hist = _read(out)
    assert hist[-1]["mean_reward"] > hist[0]["mean_reward"]
    assert "val_CIDEr-D" in hist[-1]
    export_caption_bundle(out, tmp_path / "bundle")
    assert (tmp_path / "bundle" / "manifest.json").is_file()


def test_scst_refuses_other_tasks_and_missing_runs(tmp_path):
    from edge_s2s.train.core.errors import RunError
    from edge_s2s.train.methods.scst import ScstConfig, train_scst

    run = tmp_path / "lm"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "generate", "train": {}}))
    with pytest.raises(RunError, match="'generate' run"):
        train_scst(ScstConfig(source=str(run), out_dir=str(tmp_path / "o")), SCST_FAMILIES, progress=False)
    with pytest.raises(RunError, match="no config.json"):
        train_scst(ScstConfig(source=str(tmp_path / "nothing"), out_dir=str(tmp_path / "o")), SCST_FAMILIES, progress=False)
    with pytest.raises(ValueError, match="samples"):
        ScstConfig(samples=0)


def test_cli_scst_one_line_for_another_task(tmp_path, capsys):
    from edge_s2s.cli.app import run

    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "config.json").write_text(json.dumps({"task": "generate", "train": {}}))
    assert run(["train", "scst", "--from", str(lm), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "translate or caption" in err[0]
    assert run(["train", "scst", "--from", str(lm), "--out", str(tmp_path / "o"), "--samples", "0"]) == 1
    assert "--samples must be a positive integer" in capsys.readouterr().err
