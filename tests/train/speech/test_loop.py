"""Speech training on a generated FSDD-shaped folder: a few real steps, bit-for-bit resume, export from
the run directory, and the runtime's transcripts equal to PyTorch greedy."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from edge_s2s.cli.app import run
from edge_s2s.export.speech import export_speech_bundle, load_speech_run
from edge_s2s.runtime.tasks.transcriber import Transcriber
from edge_s2s.runtime.text import Vocab
from edge_s2s.train.core.checkpoint import LAST, CheckpointError, load_checkpoint
from edge_s2s.train.core.errors import RunError
from edge_s2s.train.speech.config import SpeechModelConfig
from edge_s2s.train.speech.data import SpeechDataError, read_manifest
from edge_s2s.train.speech.loop import (
    SILENCE_FLOOR_DB,
    SpeechTrainConfig,
    cached_features,
    char_error_rate,
    corpus_features,
    digit_vocab,
    text_ids,
    torch_transcribe,
    train_speech,
)

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


def test_init_from_starts_at_the_other_runs_weights(fsdd, tmp_path):
    base = train_speech(_cfg(fsdd, tmp_path / "base", epochs=1), progress=False)
    start = load_checkpoint(base / "best.pt")["model"]
    # lr so small that Adam moves no weight visibly: what the run ends with is what it started from
    tuned = train_speech(_cfg(fsdd, tmp_path / "tuned", epochs=1, lr=1e-12, init_from=str(base)), progress=False)
    fresh = train_speech(_cfg(fsdd, tmp_path / "fresh", epochs=1, lr=1e-12, seed=4), progress=False)
    a, b = _weights(tuned), _weights(fresh)
    assert all(torch.allclose(a[k], start[k], atol=1e-6) for k in start)
    assert not all(torch.allclose(b[k], start[k], atol=1e-6) for k in start)
    # a checkpoint file works as well as its run directory
    again = train_speech(_cfg(fsdd, tmp_path / "again", epochs=1, lr=1e-12, init_from=str(base / "best.pt")),
                         progress=False)
    assert all(torch.allclose(_weights(again)[k], start[k], atol=1e-6) for k in start)


def test_init_from_refuses_what_does_not_fit(fsdd, tmp_path, capsys):
    base = train_speech(_cfg(fsdd, tmp_path / "base", epochs=1), progress=False)
    wider = SpeechModelConfig(n_mels=40, listener_hidden=8, dec_hidden=24, emb_dim=8, att_dim=8, pyramid_layers=2)
    with pytest.raises(RunError, match="has model"):
        train_speech(_cfg(fsdd, tmp_path / "w", model=wider, init_from=str(base)), progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        train_speech(_cfg(fsdd, tmp_path / "m", init_from=str(tmp_path / "nowhere.pt")), progress=False)
    assert run(["train", "speech", "--data-dir", str(tmp_path / "digits"), "--fsdd", str(fsdd), "--out",
                str(tmp_path / "cli"), "--init-from", str(base), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "has model" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_export_from_run_transcribes_like_pytorch(fsdd, tmp_path):
    cfg = _cfg(fsdd, tmp_path / "run", epochs=1)
    run = train_speech(cfg, progress=False)
    report = export_speech_bundle(run, tmp_path / "bundle")
    assert report.parity["search"]["searches"]["greedy"]["identical"] == 3
    rows = read_manifest(Path(cfg.data_dir) / "val" / "manifest.jsonl")
    rt = Transcriber.load(tmp_path / "bundle")
    # the same step limit on both sides (the runtime's own follows each recording's length)
    got = [t.text for t in rt.transcribe([r["audio"] for r in rows], max_length=cfg.max_length)]
    model, vocab, _, _ = load_speech_run(run)
    feats, _ = cached_features(Path(cfg.data_dir) / "val" / "manifest.jsonl", cfg.feature_config)
    assert got == torch_transcribe(model, feats, vocab, cfg.max_length)
    assert rt.manifest.task == "transcribe" and rt.features.n_mels == 40


def test_new_runs_make_silence_one_input_and_old_runs_keep_their_recipe(tmp_path):
    """New training runs default to remove_dc and the 60 dB floor (runtime/media/features.py); a run
    directory written before them (features without the keys) resumes and exports with its own recipe."""
    for corpus in ("fsdd", "tuxpaint"):
        fc = corpus_features(corpus)
        assert fc.remove_dc is True and fc.floor_db == SILENCE_FLOOR_DB == 60.0
    cfg = SpeechTrainConfig(out_dir=str(tmp_path / "run"))
    assert cfg.features["remove_dc"] is True and cfg.features["floor_db"] == 60.0
    assert cfg.feature_config == corpus_features("fsdd")
    old = {k: v for k, v in cfg.features.items() if k not in ("remove_dc", "floor_db")}
    again = SpeechTrainConfig.from_dict(json.loads(json.dumps({**cfg.to_dict(), "features": old})))
    assert again.feature_config.remove_dc is False and again.feature_config.floor_db is None
    assert again.feature_config.to_dict() == old  # same dict, so same feature cache and same manifest
    with pytest.raises(Exception, match="floor_db"):
        SpeechTrainConfig(features={**cfg.features, "floor_db": -3.0})


def test_a_run_with_the_default_features_exports_them_and_verifies(fsdd, tmp_path):
    from edge_s2s.runtime.tools.verify import verify_bundle

    torch.set_num_threads(1)  # two cores, one shared: torch's default threads make this 10x slower
    cfg = _cfg(fsdd, tmp_path / "run", epochs=1)
    assert cfg.feature_config.floor_db == 60.0 and cfg.feature_config.remove_dc is True
    run = train_speech(cfg, progress=False)
    export_speech_bundle(run, tmp_path / "bundle", golden=2)
    pre = json.loads((tmp_path / "bundle" / "manifest.json").read_text())["preprocessing"]
    assert pre["floor_db"] == 60.0 and pre["remove_dc"] is True
    assert Transcriber.load(tmp_path / "bundle").features == cfg.feature_config
    results = verify_bundle(tmp_path / "bundle")
    assert len(results) == 4 and all(r.passed for r in results)


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


# ---------------------------------------------------------------- Tux Paint phrases

PHRASES = {  # each sentence has a character no other one has, so whatever lands in val/test lacks one in training
    "animals/cat": "Un chat à poils.", "animals/dog": "Le chien, c\u2019est tout !", "animals/owl": "Un hibou ère.",
    "food/apple": "Une pomme \u00ab verte \u00bb ô.", "food/pear": "Une poire ç.", "town/house": "Une maison où.",
    "town/tree": "Un arbre ï.", "town/car": "Une voiture û.", "town/bus": "Un bus qui roule vite ê.",
    "sea/fish": "Un poisson-papillon ë.",
}


@pytest.fixture(scope="module")
def stamps(tmp_path_factory) -> Path:
    """A Tux Paint-shaped stamps folder: <stem>.txt with the fr.utf8= line, <stem>_desc_fr.ogg at 44.1 kHz stereo."""
    root = tmp_path_factory.mktemp("stamps")
    rate = 44100
    for i, (stem, text) in enumerate(PHRASES.items()):
        (root / stem).parent.mkdir(parents=True, exist_ok=True)
        (root / f"{stem}.txt").write_text(f"An English line.\nes.utf8=Una frase.\nfr.utf8={text}\n", encoding="utf-8")
        t = np.arange(int(rate * (0.3 + 0.02 * len(text)))) / rate
        tone = 0.2 * np.sin(2 * np.pi * (200 + 37 * i) * t * (1 + 0.3 * t))
        sf.write(str(root / f"{stem}_desc_fr.ogg"), np.stack([tone, 0.8 * tone], 1), rate, format="OGG",
                 subtype="VORBIS")
    return root


def test_tuxpaint_trains_exports_and_transcribes(stamps, tmp_path, capsys):
    data, out, bundle = tmp_path / "tux-fr", tmp_path / "run", tmp_path / "bundle"
    assert run(["train", "speech", "--corpus", "tuxpaint", "--lang", "fr", "--stamps", str(stamps), "--data-dir",
                str(data), "--out", str(out), "--listener-hidden", "8", "--dec-hidden", "16", "--batch-size", "4",
                "--max-steps", "2", "--val-max", "2", "--no-progress"]) == 0
    rows = {k: read_manifest(data / k / "manifest.jsonl") for k in ("train", "val", "test")}
    texts = {k: [r["transcript"] for r in rs] for k, rs in rows.items()}
    assert all(texts.values()) and not set(texts["train"]) & (set(texts["val"]) | set(texts["test"]))
    # the vocabulary is the training transcripts' characters; a val character it lacks is <unk>
    vocab = Vocab.load(out / "tokens.txt")
    assert set(vocab.tokens[4:]) == {c for t in texts["train"] for c in t}
    unseen = sorted({c for t in texts["val"] for c in t} - set(vocab.tokens))
    assert unseen and text_ids(unseen[0], vocab) == [vocab.unk_id]
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))["train"]
    longest = max(len(t) for ts in texts.values() for t in ts)
    assert cfg["corpus"] == "tuxpaint" and cfg["max_length"] == longest + 8
    assert cfg["features"]["sample_rate"] == 16000 and cfg["features"]["n_mels"] == 80 == cfg["model"]["n_mels"]
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [2]

    assert run(["export", str(out), "--out", str(bundle)]) == 0
    capsys.readouterr()
    rt = Transcriber.load(bundle)
    assert rt.manifest.model["data"] == "tuxpaint-stamps-default fr phrases" and rt.features.sample_rate == 16000
    ogg = rows["test"][0]["audio"]
    assert run(["transcribe", "--bundle", str(bundle), ogg]) == 0
    said = capsys.readouterr().out.rstrip("\n")
    assert said == rt.transcribe([ogg])[0].text and set(said) <= set("".join(vocab.tokens[1:2] + vocab.tokens[4:]))
    model, mvocab, mcfg, _ = load_speech_run(out)
    feats, _ = cached_features(data / "test" / "manifest.jsonl", mcfg.feature_config)
    got = [t.text for t in rt.transcribe([r["audio"] for r in rows["test"]], max_length=mcfg.max_length)]
    assert got == torch_transcribe(model, feats, mvocab, mcfg.max_length)


def test_tuxpaint_cli_errors_are_one_line(stamps, tmp_path, capsys):
    assert run(["train", "speech", "--corpus", "tuxpaint", "--lang", "de", "--stamps", str(stamps), "--data-dir",
                str(tmp_path / "d"), "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no 'de' recordings" in err and "fr (10)" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert run(["train", "speech", "--corpus", "librispeech", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "--corpus" in err and "fsdd or tuxpaint" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="corpus"):
        SpeechTrainConfig(corpus="timit")
