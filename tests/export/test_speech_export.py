"""Exporting the Listen-Attend-Spell model: dynamic axes, step parity with beam-like row
reordering, and whole searches through the runtime's loops identical to PyTorch."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from paths import REPO

from edge_s2s.export import graphs as og
from edge_s2s.export.bundle_writer import ExportError, write_manifest
from edge_s2s.export.parity import compare_searches
from edge_s2s.export.speech import (
    FeatureSeq2Seq,
    example_features,
    export_speech_graphs,
    torch_speech_decode,
    write_speech_bundle,
)
from edge_s2s.runtime.errors import BundleError
from edge_s2s.runtime.manifest import Manifest
from edge_s2s.runtime.media.features import FeatureConfig
from edge_s2s.runtime.search import Beam, Greedy
from edge_s2s.runtime.text import SPECIALS, Vocab
from edge_s2s.train.speech.config import SpeechModelConfig
from edge_s2s.train.speech.model import Speller

ATTENTIONS = ["additive", "location"]
VOCAB = Vocab(list(SPECIALS) + list("0123456789"))
FEATURES = FeatureConfig(sample_rate=8000, n_mels=8, n_fft=256)


def _model(attention: str, seed: int = 0) -> Speller:
    torch.manual_seed(seed)
    cfg = SpeechModelConfig(n_mels=8, listener_hidden=6, dec_hidden=10, emb_dim=5, att_dim=7, attention=attention,
                            location_filters=3, location_kernel=5, dropout=0.0)
    return Speller(cfg, len(VOCAB)).eval()


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_graphs_match_torch_at_other_sizes(attention, tmp_path, step_matches_torch):
    """Encoder and step run in ORT at B, T, N, K other than the export example's and match torch."""
    model = _model(attention)
    enc_p, step_p = export_speech_graphs(model, tmp_path)
    enc_s, step_s = og.ort_session(enc_p), og.ort_session(step_p)
    names = model.encoder_output_names()
    for B, T, N, K in [(1, 1, 1, 1), (4, 45, 7, 6), (3, 8, 12, len(VOCAB)), (2, 64, 5, 2)]:
        feats, lengths = example_features(model, B, T, seed=B + T)
        o_enc = dict(zip(names, enc_s.run(names, {"features": feats.numpy(), "feature_lengths": lengths.numpy()})))
        with torch.no_grad():
            t_enc = model.encode(feats, lengths)
        assert o_enc["memory"].shape[1] == model.cfg.memory_length(T)
        for n in names:
            assert o_enc[n].shape == tuple(t_enc[n].shape), n
            assert np.allclose(o_enc[n], t_enc[n].numpy(), atol=1e-5), n
        step_matches_torch(model, step_s, t_enc, B, N, K, vocab_tokens=10)


def _tones(path, freqs: list[float], rate: int = 8000, pad: float = 0.1):
    """A recording of 0.15 s tones separated by short gaps (float32 wav at `rate`)."""
    t = np.arange(int(0.15 * rate)) / rate
    parts = [np.zeros(int(pad * rate))]
    for f in freqs:
        parts += [0.4 * np.sin(2 * np.pi * f * t), np.zeros(int(0.05 * rate))]
    sf.write(str(path), np.concatenate(parts + [np.zeros(int(pad * rate))]).astype(np.float32), rate, subtype="FLOAT")
    return path


@pytest.fixture(scope="module", params=ATTENTIONS)
def speech_bundle(request, tmp_path_factory):
    """An (untrained) speller written as a bundle by write_speech_bundle, parity proved on the way, with
    golden.json made from two generated recordings (and a silent one, which is skipped)."""
    model = _model(request.param, seed=3)
    d = tmp_path_factory.mktemp(f"speech-{request.param}")
    ck = d / "weights.pt"
    torch.save(model.state_dict(), ck)
    feats, lengths = example_features(model, 3, 41, seed=7)
    quiet = d / "quiet.wav"
    sf.write(str(quiet), np.zeros(4000, np.float32), 8000)
    golden = [(_tones(d / "a.wav", [400, 900, 400]), "010"), (quiet, ""),
              (_tones(d / "b.wav", [1500, 600], rate=16000), "31")]
    manifest = write_speech_bundle(model, VOCAB, FEATURES, d / "bundle", 12, ck,
                                   parity_features=(feats.numpy(), lengths.numpy()), golden_audio=golden)
    return model, d / "bundle", manifest


def test_bundle_contract_and_recorded_parity(speech_bundle):
    model, d, _ = speech_bundle
    m = Manifest.load(d)
    assert m.task == "transcribe" and FeatureConfig.from_dict(m.preprocessing) == FEATURES
    assert [t.name for t in m.encoder.inputs] == ["features", "feature_lengths"]
    assert m.encoder.inputs[0].shape == ["B", "T", 8]
    assert m.memory == ["memory", "memory_key", "memory_mask"] and m.attention
    states = {s.name: s for s in m.state}
    assert states["h"].init == "encoder" and states["c"].init == 0.0
    assert ("prev_att" in states) == model.location
    if model.location:
        assert states["prev_att"].shape == ["N", "L"] and states["prev_att"].init == "encoder"
    par = m.metrics["parity"]
    assert par["step"]["max_abs_diff"] <= 1e-4 and par["step"]["rows"] == 9
    for name, r in par["search"]["searches"].items():
        assert r["identical"] == r["of"] == 3, name


@pytest.mark.parametrize("loop", ["compiled", "reference"])
@pytest.mark.parametrize("batch,beam,frames,max_length", [(1, 2, 9, 6), (5, 6, 50, 12), (2, 3, 80, 20)])
def test_searches_match_pytorch(speech_bundle, loop, batch, beam, frames, max_length):
    """Greedy and beam through the runtime's loops on ORT: tokens identical, log-probs within 1e-4."""
    model, d, _ = speech_bundle
    rt = FeatureSeq2Seq.load(d, loop=loop)
    feats, lengths = example_features(model, batch, frames, seed=batch * frames)
    f, n = feats.numpy(), lengths.numpy()
    report = compare_searches(lambda s: rt.decode_features(f, n, s, max_length),
                              lambda s: torch_speech_decode(model, rt.manifest, f, n, s, max_length), batch, loop,
                              searches=[Greedy(), Beam(size=beam, n_best=min(beam, 2))], tol=1e-4)
    for r in report["searches"].values():
        assert r["identical"] == batch
    hyps = rt.decode_features(f, n, Greedy(), max_length)
    L = model.cfg.memory_length(frames)
    for b, h in enumerate(hyps):
        att = h[0].attention
        assert att.shape[1] == L and np.allclose(att.sum(1), 1.0, atol=1e-5)
        assert np.all(att[:, model.cfg.memory_length(int(n[b])):] < 1e-6)  # never past the item's own frames


def test_export_refuses_a_mismatched_recipe_and_leaves_nothing(tmp_path):
    model = _model("additive")
    ck = tmp_path / "w.pt"
    torch.save(model.state_dict(), ck)
    with pytest.raises(ExportError, match="n_mels=40"):
        write_speech_bundle(model, VOCAB, FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256), tmp_path / "b", 12, ck)
    assert not (tmp_path / "b").exists()


def test_golden_recordings_ship_in_the_bundle_and_verify(speech_bundle, tmp_path):
    from edge_s2s.runtime.tools.verify import verify_bundle

    model, d, _ = speech_bundle
    golden = json.loads((d / "golden.json").read_text())
    assert golden["from"] == "pytorch"
    assert [(c["audio"], c["transcript"], c["search"]["type"]) for c in golden["cases"]] == [
        ("golden_0.wav", "010", "greedy"), ("golden_0.wav", "010", "beam"),
        ("golden_1.wav", "31", "greedy"), ("golden_1.wav", "31", "beam")]  # the silent recording is skipped
    m = Manifest.load(d)
    for name in ("golden_0.wav", "golden_1.wav", "golden.json"):
        assert name in m.files
    info = sf.info(str(d / "golden_1.wav"))
    assert info.samplerate == FEATURES.sample_rate and info.channels == 1 and info.subtype == "PCM_16"
    res = verify_bundle(d)
    assert len(res) == 4 and all(c.passed for c in res)
    # a changed expectation fails that case only
    bad = tmp_path / "b"
    shutil.copytree(d, bad)
    golden["cases"][2]["hypotheses"][0]["log_prob"] += 1e-2
    (bad / "golden.json").write_text(json.dumps(golden))
    with pytest.raises(BundleError, match="golden.json does not match its sha256"):
        verify_bundle(bad)
    m = Manifest.load(bad)
    write_manifest(bad, m, m.metrics)  # re-hashed: now the case itself is checked
    assert [c.passed for c in verify_bundle(bad)] == [True, True, False, True]


def _digit_recordings(root):
    """FSDD-like stand-ins: <digit>_<speaker>_<take>.wav, a tone whose pitch names the digit."""
    rec = root / "recordings"
    rec.mkdir(parents=True)
    for s, speaker in enumerate(("alice", "bob", "theo")):
        for digit in range(10):
            for take in range(7):
                rng = np.random.default_rng(1000 * s + 10 * take + digit)
                n = int(8000 * (0.12 + 0.01 * take))
                tone = 0.3 * np.sin(2 * np.pi * (400 + 150 * digit) * np.arange(n) / 8000)
                x = np.concatenate([np.zeros(400), tone, np.zeros(400)]) + rng.normal(0, 1e-3, n + 800)
                sf.write(str(rec / f"{digit}_{speaker}_{take}.wav"), x, 8000, subtype="PCM_16")
    return root


def test_edge_s2s_export_of_a_speech_run_writes_golden_cases_verify_passes(tmp_path, capsys):
    from edge_s2s.cli.app import run
    from edge_s2s.train.speech.loop import SpeechTrainConfig, train_speech

    torch.set_num_threads(1)
    fsdd = _digit_recordings(tmp_path / "fsdd")
    model = SpeechModelConfig(n_mels=40, listener_hidden=8, dec_hidden=16, emb_dim=8, att_dim=8, pyramid_layers=2)
    cfg = SpeechTrainConfig(data_dir=str(tmp_path / "digits"), fsdd=str(fsdd), n_train=16, n_val=4, n_test=4,
                            model=model, out_dir=str(tmp_path / "run"), epochs=1, batch_size=8, val_max=4, seed=3)
    train_speech(cfg, progress=False)
    assert run(["export", str(tmp_path / "run"), "--out", str(tmp_path / "bundle")]) == 0
    out = capsys.readouterr().out
    assert "golden.json: 6 cases" in out
    cases = json.loads((tmp_path / "bundle" / "golden.json").read_text())["cases"]
    assert len({c["audio"] for c in cases}) == 3 and all((tmp_path / "bundle" / c["audio"]).is_file() for c in cases)
    assert run(["verify", str(tmp_path / "bundle")]) == 0
    assert "6 passed, 0 failed" in capsys.readouterr().out
    # int8: the fp32 export (parity proved) quantised, its golden cases decoded by the int8 graphs
    for parts in ("linear", "all"):
        q = tmp_path / f"bundle-int8-{parts}"
        assert run(["export", str(tmp_path / "run"), "--out", str(q), "--int8", "--int8-parts", parts]) == 0
        m = json.loads((q / "manifest.json").read_text())
        assert m["model"]["int8"] == parts and m["metrics"]["parity"]["of"].startswith("the fp32 graphs")
        import onnx

        ops = {n.op_type for g in ("encoder.onnx", "decoder_step.onnx") for n in onnx.load(str(q / g)).graph.node}
        assert ops & {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul", "DequantizeLinear"}
        capsys.readouterr()
        assert run(["verify", str(q)]) == 0 and "6 passed, 0 failed" in capsys.readouterr().out
    # the speed benchmark runs on it too (smoke: its table, and runtime and torch agree on every text)
    import runpy

    bench = runpy.run_path(str(REPO / "bench" / "bench_speech.py"))
    assert bench["main"](["--bundle", str(tmp_path / "bundle"), "--run", str(tmp_path / "run"), "--data",
                          str(tmp_path / "digits" / "test"), "--n", "2", "--repeats", "1", "--tables", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    heads = next(x for x in lines if x.startswith("| engine |"))
    heads = [c.strip() for c in heads.strip("|").split("|")]
    row = next(x for x in lines if x.startswith("| runtime fp32 |"))
    row = dict(zip(heads, (c.strip() for c in row.strip("|").split("|"))))
    assert row["greedy same as torch"] == "2/2" and row["beam 5 same as torch"] == "2/2", row


def test_limit_follows_the_training_recordings(tmp_path):
    """The exported limit is 1.5 x the longest training recording (whole seconds, at least 5, at most
    the runtime's default); no manifest, no derived limit."""
    from edge_s2s.export.speech import trained_max_seconds
    from edge_s2s.runtime.tasks.transcriber import DEFAULT_MAX_SECONDS
    from edge_s2s.train.speech.data import write_manifest
    from edge_s2s.train.speech.loop import SpeechTrainConfig

    cfg = SpeechTrainConfig(data_dir=str(tmp_path))
    assert trained_max_seconds(cfg) is None
    for longest, want in ((7.6, 12.0), (1.0, 5.0), (100.0, DEFAULT_MAX_SECONDS)):
        write_manifest(tmp_path / "train" / "manifest.jsonl",
                       [{"audio": "a.wav", "transcript": "1", "duration": d} for d in (0.5, longest)])
        assert trained_max_seconds(cfg) == want


def test_rate_follows_the_training_recordings(tmp_path):
    """max_tokens_per_second is the fastest training recording's characters per second (rounded up to
    0.01); no manifest, no rate."""
    from edge_s2s.export.speech import trained_tokens_per_second
    from edge_s2s.train.speech.data import write_manifest
    from edge_s2s.train.speech.loop import SpeechTrainConfig

    cfg = SpeechTrainConfig(data_dir=str(tmp_path))
    assert trained_tokens_per_second(cfg, VOCAB) is None
    write_manifest(tmp_path / "train" / "manifest.jsonl",
                   [{"audio": "a.wav", "transcript": "1 2 3", "duration": 2.0},  # 2.5 a second
                    {"audio": "b.wav", "transcript": "12", "duration": 0.6},  # 3.33.. a second: the fastest
                    {"audio": "c.wav", "transcript": "1", "duration": 0.0}])  # no duration: not counted
    assert trained_tokens_per_second(cfg, VOCAB) == 3.34


def test_the_rate_is_written_and_sizes_max_length(tmp_path):
    from edge_s2s.runtime.tasks.transcriber import rate_step_limit

    model = _model("location")
    ck = tmp_path / "w.pt"
    torch.save(model.state_dict(), ck)
    m = write_speech_bundle(model, VOCAB, FEATURES, tmp_path / "b", 6, ck, max_seconds=10.0, tokens_per_second=4.5)
    saved = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert saved["max_tokens_per_second"] == 4.5 and Manifest.load(tmp_path / "b").max_tokens_per_second == 4.5
    assert m.max_length == saved["max_length"] == rate_step_limit(10.0, 4.5) == 72  # ceil(10 * 4.5 * 1.5) + 4
    write_speech_bundle(model, VOCAB, FEATURES, tmp_path / "old", 6, ck, max_seconds=10.0)
    saved = json.loads((tmp_path / "old" / "manifest.json").read_text())
    assert "max_tokens_per_second" not in saved and saved["max_length"] == 6  # no rate: as before
    for bad in (0.0, -2.0, 1e6):
        with pytest.raises(ExportError, match="tokens_per_second"):
            write_speech_bundle(model, VOCAB, FEATURES, tmp_path / "bad", 6, ck, tokens_per_second=bad)
    assert not (tmp_path / "bad").exists()


def test_split_seconds_is_written_and_checked(tmp_path):
    from edge_s2s.runtime.tasks.transcriber import Transcriber

    model = _model("location")
    ck = tmp_path / "w.pt"
    torch.save(model.state_dict(), ck)
    write_speech_bundle(model, VOCAB, FEATURES, tmp_path / "b", 6, ck, max_seconds=10.0, split_seconds=4.0)
    pre = json.loads((tmp_path / "b" / "manifest.json").read_text())["preprocessing"]
    assert pre["split_seconds"] == 4.0 and pre["max_seconds"] == 10.0
    rt = Transcriber.load(tmp_path / "b")
    assert (rt.split_seconds, rt.max_seconds) == (4.0, 10.0)
    write_speech_bundle(model, VOCAB, FEATURES, tmp_path / "none", 6, ck, max_seconds=10.0)
    assert "split_seconds" not in json.loads((tmp_path / "none" / "manifest.json").read_text())["preprocessing"]
    assert Transcriber.load(tmp_path / "none").split_seconds == 10.0  # no key: split only past max_seconds
    for bad in (0.0, -1.0, 12.0):
        with pytest.raises(ExportError, match="split_seconds"):
            write_speech_bundle(model, VOCAB, FEATURES, tmp_path / "bad", 6, ck, max_seconds=10.0, split_seconds=bad)
    assert not (tmp_path / "bad").exists()
