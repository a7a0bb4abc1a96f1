"""The runtime Transcriber: audio in any format -> log-mels -> a tiny trained Speller's bundle -> text.

The model is trained for a few dozen steps on generated tone sequences (each digit is a pitch),
enough to check the pipeline, not quality. `tiny_speech_bundle` is shared with the CLI tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from speech_toy import DIGITS, FEATURES, MAX_SECONDS, RATE, TONES, VOCAB, tiny_speech_bundle, tone_audio

from edge_s2s.runtime.errors import InputError
from edge_s2s.runtime.search import Beam, Greedy
from edge_s2s.runtime.tasks.loading import load_any
from edge_s2s.runtime.tasks.transcriber import SILENCE_NOTE, Transcriber


@pytest.fixture(scope="session")
def speech_bundle(tmp_path_factory) -> Path:
    return tiny_speech_bundle(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="module")
def asr(speech_bundle) -> Transcriber:
    return Transcriber.load(speech_bundle)


def _steady_tone(seconds: float) -> np.ndarray:
    """One tone with no pause at all: a long recording that cannot be split."""
    return (0.5 * np.sin(2 * np.pi * TONES["1"] * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def _wav(path: Path, x: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), x, rate, subtype=subtype)
    return path


def test_paths_bytes_and_arrays_give_the_same_transcript(asr, tmp_path):
    x = tone_audio("0213")
    wav = _wav(tmp_path / "a.wav", x, subtype="FLOAT")
    r = asr.transcribe([str(wav), wav.read_bytes(), x], search=Beam(3))
    assert all(t.ok and t.note is None for t in r)
    assert r[0].text == r[1].text == r[2].text and r[0].score == pytest.approx(r[2].score, abs=1e-6)
    h = r[0].hypotheses[0]
    assert h.text == "".join(h.tokens) and set(h.text) <= set(DIGITS)
    assert r[0].duration == pytest.approx(x.size / RATE)
    times = r[0].token_times()
    assert len(times) == len(h.tokens) and all(0 <= s <= r[0].duration for s in times)
    assert h.attention.shape == (len(h.tokens), asr.memory_length(FEATURES.n_frames(x.size)))
    assert asr.frame_seconds == pytest.approx(8 * FEATURES.hop_ms / 1000)


def test_batch_equals_one_by_one_across_chunks(asr):
    clips = [tone_audio(s) for s in ("0", "3210", "12", "333", "1")]
    together = asr.transcribe(clips, batch_size=3)
    for clip, t in zip(clips, together):
        alone = asr.transcribe([clip])[0]
        assert alone.text == t.text
        assert alone.score == pytest.approx(t.score, abs=1e-4)
        assert alone.attention.shape == t.attention.shape


def test_sample_formats_channels_and_rates_just_work(asr, tmp_path):
    x = tone_audio("120")
    ref = asr.transcribe([x])[0]
    files = [_wav(tmp_path / "u8.wav", x, subtype="PCM_U8"), _wav(tmp_path / "s24.wav", x, subtype="PCM_24"),
             _wav(tmp_path / "f32.wav", x, subtype="FLOAT"),
             _wav(tmp_path / "stereo.wav", np.stack([x, x], axis=1)),
             _wav(tmp_path / "odd.wav", tone_audio("120", rate=11025), rate=11025)]
    flac = tmp_path / "a.flac"
    sf.write(str(flac), x, RATE, format="FLAC")
    r = asr.transcribe([str(p) for p in files + [flac]], errors="raise")
    assert all(t.ok and t.hypotheses for t in r)
    assert r[1].text == r[2].text == ref.text  # 24-bit and float copies of the same samples
    assert r[3].text == asr.transcribe([str(_wav(tmp_path / "mono.wav", x))])[0].text  # stereo = its mono mix


def test_silence_is_an_empty_transcript_with_a_note(asr, tmp_path):
    quiet = _wav(tmp_path / "quiet.wav", np.zeros(RATE, np.float32))
    r = asr.transcribe([str(quiet), tone_audio("1")], errors="raise")
    assert r[0].ok and r[0].text == "" and r[0].note == SILENCE_NOTE and r[0].token_times() == []
    assert r[1].note is None and r[1].ok


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make,match", [
    (lambda d: _file(d / "notes.txt", b"call me at 555\n"), "not audio"),
    (lambda d: _file(d / "empty.wav", b""), "empty"),
    (lambda d: d / "missing.wav", "no such file"),
    (lambda d: _wav(d / "long.wav", _steady_tone(4.0)), "limit of 3 s"),
])
def test_bad_files_raise_or_are_kept_with_the_rest_transcribed(asr, tmp_path, make, match):
    bad = make(tmp_path)
    with pytest.raises(InputError, match=match) as e:
        asr.transcribe([tone_audio("1"), str(bad)])
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    r = asr.transcribe([tone_audio("1"), str(bad), tone_audio("2")], errors="keep")
    assert r[0].ok and r[2].ok and r[0].hypotheses and r[2].hypotheses
    assert not r[1].ok and str(bad) in r[1].error and match in r[1].error and not r[1].hypotheses


@pytest.mark.parametrize("x,match", [
    (np.zeros((800, 2), np.float32), "1-D"),
    (np.zeros(800, np.int16), "float samples"),
    (np.zeros(0, np.float32), "no samples"),
    (np.full(800, np.nan, np.float32), "NaN"),
    (_steady_tone(MAX_SECONDS + 0.01), "limit of 3 s"),
    (tone_audio("1")[400:450], "shorter than one"),
])
def test_bad_arrays_name_the_problem(asr, x, match):
    with pytest.raises(InputError, match=match):
        asr.transcribe([x])


def test_bad_calls_and_loading(asr, speech_bundle):
    with pytest.raises(InputError, match="list"):
        asr.transcribe(tone_audio("1"))
    with pytest.raises(InputError, match="no recordings"):
        asr.transcribe([])
    with pytest.raises(InputError, match="errors must be"):
        asr.transcribe([tone_audio("1")], errors="ignore")
    assert Transcriber.load().manifest.task == "transcribe"  # no path: the default model shipped in the package
    m = load_any(speech_bundle, loop="reference")
    assert isinstance(m, Transcriber) and m.max_seconds == MAX_SECONDS
    x = tone_audio("31")
    assert m.transcribe([x], search=Greedy())[0].text == asr.transcribe([x], search=Greedy())[0].text


def test_callback_sees_input_indices_past_a_skipped_input(asr, tmp_path):
    bad = _file(tmp_path / "empty.wav", b"")
    seen: dict[int, list[int]] = {}
    r = asr.transcribe([tone_audio("1"), str(bad), tone_audio("23")], errors="keep", batch_size=3,
                       callback=lambda ev: seen.setdefault(ev.batch_index, []).append(ev.id))
    assert set(seen) == {0, 2}
    for i in (0, 2):
        ids = [t for t in seen[i] if t != VOCAB.eos_id]
        assert ids == r[i].hypotheses[0].ids


def test_a_speech_bundle_given_to_the_text_runtime_points_to_transcribe(speech_bundle, capsys):
    from edge_s2s.cli.app import run
    from edge_s2s.runtime.errors import EdgeS2SError
    from edge_s2s.runtime.tasks.seq2seq import Seq2Seq

    with pytest.raises(EdgeS2SError, match="edge-s2s transcribe"):
        Seq2Seq.load(speech_bundle)
    assert run(["translate", "--bundle", str(speech_bundle), "eins zwei"]) == 1
    assert "edge-s2s transcribe" in capsys.readouterr().err


@pytest.mark.parametrize("search", [Greedy(), Beam(3)])
def test_attention_is_returned_for_greedy_and_beam(asr, search):
    x = tone_audio("2013")
    r = asr.transcribe([x], search=search)[0]
    L = asr.memory_length(FEATURES.n_frames(x.size))
    for h in r.hypotheses:
        assert h.attention.shape == (len(h.tokens), L) and np.allclose(h.attention.sum(1), 1.0, atol=1e-4)
    assert asr.log_mel(x).shape == (FEATURES.n_frames(x.size), FEATURES.n_mels)


def _long_recording(pieces: list[str], pause: float = 0.4) -> tuple[np.ndarray, list[int]]:
    """Tone sequences separated by `pause` s of silence, and the sample each sequence starts at."""
    out, starts, pos = [], [], 0
    for k, digits in enumerate(pieces):
        if k:
            out.append(np.zeros(int(pause * RATE), np.float32))
            pos += out[-1].size
        starts.append(pos)
        out.append(tone_audio(digits))
        pos += out[-1].size
    return np.concatenate(out), starts


def test_a_long_recording_is_split_at_pauses_and_joined(asr, tmp_path):
    pieces = ["0123", "3210", "1302", "2031", "0312", "21"]
    x, starts = _long_recording(pieces)
    assert x.size / RATE > 2 * MAX_SECONDS
    wav = _wav(tmp_path / "long.wav", x)
    r = asr.transcribe([str(wav), x], search=Greedy())
    assert r[0].text == r[1].text and r[0].ok and "split at pauses into" in r[0].note
    assert r[0].pieces == r[1].pieces
    t = r[1]  # the float samples themselves (the wav is 16-bit)
    assert len(t.pieces) >= 3 and all(e - s <= MAX_SECONDS for s, e in t.pieces)
    assert t.pieces[0][0] == 0 and t.pieces[-1][1] == pytest.approx(x.size / RATE)
    # the same as transcribing each piece on its own, joined with a space
    rate = RATE
    alone = asr.transcribe([x[int(round(s * rate)): int(round(e * rate))] for s, e in t.pieces], search=Greedy())
    assert t.text == " ".join(a.text.strip() for a in alone if a.text.strip())
    h = t.hypotheses[0]
    assert h.ids == [i for a in alone for i in a.hypotheses[0].ids]
    assert h.log_prob == pytest.approx(sum(a.hypotheses[0].log_prob for a in alone), abs=1e-4)
    # attention over the whole recording: each piece's rows shifted to where the piece starts
    assert h.attention.shape == (len(h.ids), asr.memory_length(FEATURES.n_frames(x.size)))
    times = t.token_times()
    row = 0
    for (s, e), a in zip(t.pieces, alone):
        n = len(a.hypotheses[0].ids)
        assert times[row: row + n] == pytest.approx([s + u for u in a.token_times()], abs=1e-3)
        assert all(s <= u <= e for u in times[row: row + n])
        row += n


def test_an_unsplittable_long_recording_names_the_limit_and_the_rest_is_kept(asr):
    r = asr.transcribe([_steady_tone(5.0), tone_audio("12")], errors="keep")
    assert not r[0].ok and "limit of 3 s" in r[0].error and "no pause" in r[0].error
    assert "shorter than 3 s" in r[0].error and r[1].ok
