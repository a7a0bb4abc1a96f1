"""Speech training on a generated FSDD-shaped folder: a few real steps, bit-for-bit resume, export from
the run directory, and the runtime's transcripts equal to PyTorch greedy."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from edge_s2s.cli.app import run
from edge_s2s.export.speech_export import export_speech_bundle
from edge_s2s.runtime.transcriber import Transcriber
from edge_s2s.train.checkpoint import LAST, load_checkpoint
from edge_s2s.train.loop import RunError
from edge_s2s.train.speech_config import SpeechModelConfig
from edge_s2s.train.speech_data import SpeechDataError, read_manifest
from edge_s2s.train.speech_loop import (SpeechTrainConfig, cached_features, char_error_rate, digit_vocab,
                                        torch_transcribe, train_speech)

RATE = 8000


def _digit_wav(path: Path, digit: int, take: int, speaker: int) -> None:
    """A stand-in recording: quiet noise, a tone whose pitch names the digit, quiet noise."""
    rng = np.random.default_rng(1000 * speaker + 10 * take + digit)
    n = int(RATE * (0.12 + 0.01 * take))
    t = np.arange(n) / RATE
    tone = 0.3 * np.sin(2 * np.pi * (400 + 150 * digit) * t) * np.hanning(n) ** 0.2
    pad = int(0.05 * RATE)
    x = np.concatenate([np.zeros(pad), tone, np.zeros(pad)]) + rng.normal(0, 10 ** (-62 / 20), n + 2 * pad)
    sf.write(str(path), x, RATE, subtype="PCM_16")


@pytest.fixture(scope="module")
def fsdd(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fsdd")
    rec = root / "recordings"
    rec.mkdir()
    for s, speaker in enumerate(("alice", "bob", "theo")):
        for d in range(10):
            for take in range(7):  # takes 0-4 validation, 5-6 training
                _digit_wav(rec / f"{d}_{speaker}_{take}.wav", d, take, s)
    return root


def _cfg(fsdd: Path, tmp: Path, **kw) -> SpeechTrainConfig:
    model = SpeechModelConfig(n_mels=40, listener_hidden=8, dec_hidden=16, emb_dim=8, att_dim=8, dropout=0.1,
                              pyramid_layers=2)
    base = dict(data_dir=str(tmp.parent / "digits"), fsdd=str(fsdd), n_train=24, n_val=4, n_test=4, model=model,
                out_dir=str(tmp), epochs=2, batch_size=8, val_max=4, seed=3)
    base.update(kw)
    return SpeechTrainConfig(**base)


def _weights(run: Path) -> dict:
    return load_checkpoint(run / LAST)["model"]


def test_trains_and_writes_a_run(fsdd, tmp_path):
    run = train_speech(_cfg(fsdd, tmp_path / "run"), progress=False)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["task"] == "transcribe" and cfg["utterances"] == {"train": 24, "val": 4}
    assert (run / "tokens.txt").read_text().split("\n")[4:15] == list("0123456789") + [" "]
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2] and all(0.0 <= m["val_cer"] for m in lines)
    assert lines[1]["train_loss"] < lines[0]["train_loss"] + 1.0 and np.isfinite(lines[1]["val_loss"])
    assert (run / "best.pt").is_file()
    # the features were cached once, beside the manifest, and read back identically
    cache = list((tmp_path / "digits" / "train").glob("features-*.npz"))
    assert len(cache) == 1
    fc = _cfg(fsdd, tmp_path).feature_config
    again, texts = cached_features(tmp_path / "digits" / "train" / "manifest.jsonl", fc)
    assert len(again) == 24 and all(t.replace(" ", "").isdigit() for t in texts)


def test_resume_is_bit_for_bit(fsdd, tmp_path):
    straight = train_speech(_cfg(fsdd, tmp_path / "a", spec_augment=True), progress=False)
    half = train_speech(_cfg(fsdd, tmp_path / "b", spec_augment=True, epochs=1), progress=False)
    resumed = train_speech(_cfg(fsdd, tmp_path / "b", epochs=2), resume=True, progress=False)
    a, b = _weights(straight), _weights(resumed)
    assert half == resumed and a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_export_from_run_transcribes_like_pytorch(fsdd, tmp_path):
    cfg = _cfg(fsdd, tmp_path / "run", epochs=1)
    run = train_speech(cfg, progress=False)
    report = export_speech_bundle(run, tmp_path / "bundle")
    assert report.parity["search"]["searches"]["greedy"]["identical"] == 3
    rows = read_manifest(Path(cfg.data_dir) / "val" / "manifest.jsonl")
    rt = Transcriber.load(tmp_path / "bundle")
    got = [t.text for t in rt.transcribe([r["audio"] for r in rows])]
    from edge_s2s.export.speech_export import load_speech_run

    model, vocab, _, _ = load_speech_run(run)
    feats, _ = cached_features(Path(cfg.data_dir) / "val" / "manifest.jsonl", cfg.feature_config)
    assert got == torch_transcribe(model, feats, vocab, cfg.max_length)
    assert rt.manifest.task == "transcribe" and rt.features.n_mels == 40


def test_run_directory_errors(fsdd, tmp_path):
    with pytest.raises(RunError, match="cannot resume"):
        train_speech(_cfg(fsdd, tmp_path / "none"), resume=True, progress=False)
    with pytest.raises(SpeechDataError, match="no such folder"):
        train_speech(_cfg(tmp_path / "missing", tmp_path / "r", data_dir=str(tmp_path / "d2")), progress=False)
    with pytest.raises(ValueError, match="n_mels"):
        _cfg(fsdd, tmp_path, model=SpeechModelConfig(n_mels=80))


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert run(["train", "speech", "--data-dir", str(tmp_path / "d"), "--fsdd", str(tmp_path / "nowhere"),
                "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no such folder" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert run(["train", "speech", "--attention", "sideways", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "attention" in err and "Traceback" not in err


def test_char_error_rate_matches_jiwer():
    jiwer = pytest.importorskip("jiwer")
    hyps, refs = ["1 2 3", "4 5", "", "9 9 9 9"], ["1 2 4", "4 5 6", "7", "9 9"]
    assert char_error_rate(hyps, refs) == pytest.approx(jiwer.cer(refs, hyps))
    assert char_error_rate(refs, refs) == 0.0
    assert len(digit_vocab()) == 15
