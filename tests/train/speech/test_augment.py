"""Waveform augmentation (train/speech/augment.py): each perturbation does what it says, and sets are reproducible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge_s2s.train.speech.augment import (
    AugmentConfig,
    add_noise,
    augment,
    augment_set,
    change_speed,
    speech_power,
    telephone,
)
from edge_s2s.train.speech.data import _wav_bytes, read_manifest, write_manifest

RATE = 8000


def tone(hz: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / RATE)[np.argmax(spec)])


def test_speed_changes_length_and_pitch_together():
    x = tone(440.0)
    fast, slow = change_speed(x, RATE, 1.1), change_speed(x, RATE, 0.9)
    assert abs(fast.size - x.size / 1.1) <= 2 and abs(slow.size - x.size / 0.9) <= 2
    assert abs(peak_hz(fast) - 484.0) < 4 and abs(peak_hz(slow) - 396.0) < 4
    assert np.array_equal(change_speed(x, RATE, 1.0), x)


def test_noise_lands_at_the_asked_snr_measured_on_the_speech_not_the_pauses():
    speech = np.concatenate([np.zeros(RATE, np.float32), tone(300.0), np.zeros(RATE, np.float32)])
    for kind in ("white", "brown"):
        noisy = add_noise(speech, RATE, 10.0, kind, np.random.default_rng(0))
        n = noisy - speech
        snr = 10 * np.log10(speech_power(speech, RATE) / np.mean(n.astype(np.float64) ** 2))
        assert abs(snr - 10.0) < 0.3, (kind, snr)
        assert np.abs(n[:RATE]).max() > 0  # the pauses are no longer digital zeros
    with pytest.raises(ValueError, match="white"):
        add_noise(speech, RATE, 10.0, "pink", np.random.default_rng(0))


def test_telephone_band_cuts_the_low_hum_and_keeps_the_voice_band():
    hum, voice = tone(80.0, 2.0), tone(1000.0, 2.0)
    rms = lambda a: float(np.sqrt(np.mean(a[RATE // 2:].astype(np.float64) ** 2)))
    assert rms(telephone(hum, RATE)) < 0.1 * rms(hum)
    assert 0.8 * rms(voice) < rms(telephone(voice, RATE)) < 1.2 * rms(voice)


def test_augment_is_seeded_and_says_what_it_did():
    x = tone(500.0)
    a, what = augment(x, RATE, AugmentConfig(), np.random.default_rng(5))
    b, again = augment(x, RATE, AugmentConfig(), np.random.default_rng(5))
    assert np.array_equal(a, b) and what == again
    assert 0.9 <= what["speed"] <= 1.1 and -30 <= what["gain_db"] <= 6
    assert np.abs(a).max() <= 1.0
    plain, what = augment(x, RATE, AugmentConfig(speed=(1.0, 1.0), p_noise=0, p_telephone=0, gain_db=(0, 0)),
                          np.random.default_rng(1))
    assert what == {"speed": 1.0, "gain_db": 0.0} and np.allclose(plain, x)


@pytest.mark.parametrize("bad", [{"speed": (1.2, 0.9)}, {"speed": (0.1, 1.0)}, {"p_noise": 1.5},
                                 {"gain_db": (6, -6)}])
def test_absurd_settings_are_refused(bad):
    with pytest.raises(ValueError):
        AugmentConfig(**bad)


def test_augment_set_keeps_transcripts_and_speakers_and_is_reproducible(tmp_path):
    src = tmp_path / "src"
    (src / "wav").mkdir(parents=True)
    rows = []
    for i, hz in enumerate((300.0, 600.0, 900.0)):
        (src / "wav" / f"{i}.wav").write_bytes(_wav_bytes(tone(hz), RATE))
        rows.append({"id": f"u{i}", "audio": f"wav/{i}.wav", "transcript": f"{i} {i}", "speaker": f"s{i}"})
    m = write_manifest(src / "manifest.jsonl", rows)
    first = read_manifest(augment_set([m], tmp_path / "a", 6, seed=3, rate=RATE))
    again = read_manifest(augment_set([m], tmp_path / "b", 8, seed=3, rate=RATE))
    assert len(first) == 6 and len(again) == 8
    by_id = {r["id"]: r for r in rows}
    for r, r2 in zip(first, again):
        assert r["id"] == r2["id"] and r["augment"] == r2["augment"]  # a larger set keeps the first copies
        assert Path(r["audio"]).read_bytes() == Path(r2["audio"]).read_bytes()
        source = by_id[r["source"]]
        assert r["transcript"] == source["transcript"] and r["speaker"] == source["speaker"]
        data, rate = sf.read(r["audio"])
        assert rate == RATE and abs(data.size / RATE - r["duration"]) < 1e-3
    with pytest.raises(ValueError, match="no rows"):
        augment_set([write_manifest(tmp_path / "empty.jsonl", [])], tmp_path / "c", 2, seed=0, rate=RATE)
