"""Log-mel features against hand-worked and independently computed numbers."""

import json
import math

import numpy as np
import pytest

from edge_s2s.runtime.errors import BundleError
from edge_s2s.runtime.media.features import (
    FeatureConfig,
    hz_to_mel,
    log_mel,
    mel_centers,
    mel_filterbank,
    mel_to_hz,
    power_frames,
)


def _mel(f):  # HTK, written out independently of the module
    return 2595.0 * math.log10(1.0 + f / 700.0)


def _sine(freq, rate=16000, seconds=1.0, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def test_config_round_trips_through_json():
    for cfg in (FeatureConfig(), FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, preemphasis=None, fmax=3800.0,
                                              normalize=True)):
        d = json.loads(json.dumps(cfg.to_dict()))
        assert d["type"] == "log_mel" and d["mel_scale"] == "htk" and d["window"] == "hann"
        assert FeatureConfig.from_dict(d) == cfg


@pytest.mark.parametrize("change,needle", [
    ({"hop_length": 3}, "does not know (hop_length)"),
    ({"mel_scale": "slaney"}, "mel_scale 'slaney'"),
    ({"type": "image"}, "not a speech model"),
    ({"n_fft": 128}, "malformed"),
    ({"n_mels": "80"}, "malformed"),
])
def test_bad_manifest_dicts_are_bundle_errors(change, needle):
    d = {**FeatureConfig().to_dict(), **change}
    with pytest.raises(BundleError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        FeatureConfig.from_dict(d)
    with pytest.raises(BundleError):
        FeatureConfig.from_dict([1, 2])


def test_config_validation():
    with pytest.raises(ValueError, match="shorter than the window"):
        FeatureConfig(n_fft=256)  # 25 ms at 16 kHz is 400 samples
    with pytest.raises(ValueError, match="fmin < fmax"):
        FeatureConfig(fmin=9000.0)
    with pytest.raises(ValueError, match="covers no FFT bin"):
        FeatureConfig(n_mels=200, n_fft=512, fmin=0.0)
    with pytest.raises(ValueError, match="preemphasis"):
        FeatureConfig(preemphasis=1.5)


def test_mel_scale_hand_worked():
    assert abs(hz_to_mel(1000.0) - 1000.0) < 0.1  # the HTK scale is built so that 1 kHz ~ 1000 mel
    assert abs(hz_to_mel(700.0) - 2595.0 * math.log10(2.0)) < 1e-9
    f = np.array([0.0, 20.0, 440.0, 4000.0, 8000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, atol=1e-9)


def test_tiny_filterbank_by_hand():
    """8 kHz, n_fft 16 (bins every 500 Hz), 2 filters over 0-4000 Hz: every weight worked out from the formula."""
    cfg = FeatureConfig(sample_rate=8000, n_mels=2, win_ms=2.0, hop_ms=1.0, n_fft=16, fmin=0.0, preemphasis=None)
    top = _mel(4000.0)
    corners = [0.0, top / 3, 2 * top / 3, top]
    expect = np.zeros((2, 9))
    for m in range(2):
        lo, mid, hi = corners[m], corners[m + 1], corners[m + 2]
        for k in range(9):
            b = _mel(k * 500.0)
            if lo < b <= mid:
                expect[m, k] = (b - lo) / (mid - lo)
            elif mid < b < hi:
                expect[m, k] = (hi - b) / (hi - mid)
    np.testing.assert_allclose(mel_filterbank(cfg), expect, atol=1e-12)
    np.testing.assert_allclose(mel_centers(cfg), [700 * (10 ** (c / 2595) - 1) for c in corners[1:3]], rtol=1e-12)


def test_default_filterbank_rows_are_triangles_peaking_at_their_centre():
    cfg = FeatureConfig()
    fb = mel_filterbank(cfg)
    assert fb.shape == (80, 257) and fb.min() >= 0.0 and fb.max() <= 1.0
    bin_mel = np.array([_mel(k * 16000 / 512) for k in range(257)])
    edges = np.linspace(_mel(20.0), _mel(8000.0), 82)
    for m, row in enumerate(fb):
        nz = np.flatnonzero(row)
        assert nz.size >= 1 and np.all(np.diff(nz) == 1), m  # one contiguous support
        peak = int(np.argmax(row))
        assert np.all(np.diff(row[nz[0]: peak + 1]) >= 0) and np.all(np.diff(row[peak: nz[-1] + 1]) <= 0), m
        assert peak == int(np.argmin(np.abs(bin_mel - edges[m + 1]))), m  # the bin nearest the centre (in mel)
        assert np.all(row[(bin_mel <= edges[m]) | (bin_mel >= edges[m + 2])] == 0.0), m


def test_returned_filterbank_is_a_copy():
    cfg = FeatureConfig()
    fb = mel_filterbank(cfg)
    fb[:] = 0.0
    assert mel_filterbank(cfg).max() > 0.5


@pytest.mark.parametrize("band", [8, 30, 55, 75])
def test_a_sine_lands_in_its_mel_band(band):
    cfg = FeatureConfig()
    freq = float(mel_centers(cfg)[band])
    feats = log_mel(_sine(freq), cfg)
    energy = np.exp(feats.astype(np.float64)).mean(axis=0)
    assert int(np.argmax(energy)) == band
    far = np.abs(np.arange(80) - band) > 6
    assert 10 * np.log10(energy[band] / energy[far].max()) > 30


@pytest.mark.parametrize("n,frames", [(0, 0), (399, 0), (400, 1), (401, 1), (559, 1), (560, 2), (16000, 98)])
def test_frame_count_snips_edges(n, frames):
    cfg = FeatureConfig()  # window 400 samples, hop 160: 1 + (n - 400) // 160
    x = np.random.default_rng(n).uniform(-0.5, 0.5, n).astype(np.float32)
    assert log_mel(x, cfg).shape == (frames, 80) and cfg.n_frames(n) == frames
    assert log_mel(x, cfg).dtype == np.float32


def test_power_spectrum_against_an_explicit_dft():
    cfg = FeatureConfig()
    x = np.random.default_rng(3).uniform(-0.5, 0.5, 2000)
    y = np.concatenate([[x[0]], x[1:] - 0.97 * x[:-1]])  # pre-emphasis, written out
    i, win, hop, n_fft = 5, 400, 160, 512
    frame = y[i * hop: i * hop + win] * np.array([0.5 - 0.5 * math.cos(2 * math.pi * n / win) for n in range(win)])
    k = np.arange(n_fft // 2 + 1)[:, None]
    dft = (frame[None, :] * np.exp(-2j * np.pi * k * np.arange(win)[None, :] / n_fft)).sum(axis=1)
    np.testing.assert_allclose(power_frames(x, cfg)[i], np.abs(dft) ** 2, rtol=1e-9, atol=1e-12)


def test_float32_and_float64_input_agree():
    cfg = FeatureConfig()
    x64 = np.random.default_rng(4).uniform(-0.5, 0.5, 16000) * np.linspace(0.01, 1, 16000)
    x32 = x64.astype(np.float32)
    assert np.array_equal(log_mel(x32, cfg), log_mel(x32.astype(np.float64), cfg))  # bitwise: same values
    np.testing.assert_allclose(log_mel(x64, cfg), log_mel(x32, cfg), atol=1e-4)  # only float32 rounding apart


def test_silence_sits_on_the_floor_and_normalisation():
    assert np.all(log_mel(np.zeros(4000, np.float32)) == np.float32(math.log(1e-10)))
    cfg = FeatureConfig(normalize=True)
    x = _sine(440) + np.random.default_rng(5).normal(0, 0.01, 16000).astype(np.float32)
    f = log_mel(x, cfg).astype(np.float64)
    np.testing.assert_allclose(f.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(f.std(axis=0), 1.0, atol=1e-3)
    assert np.abs(log_mel(np.zeros(4000, np.float32), cfg)).max() < 1e-6  # constant bins: centred, not blown up
    assert log_mel(np.zeros(10, np.float32), cfg).shape == (0, 80)


def test_features_are_deterministic_and_reject_stereo():
    x = np.random.default_rng(6).uniform(-0.5, 0.5, 8000).astype(np.float32)
    assert np.array_equal(log_mel(x), log_mel(x.copy()))
    with pytest.raises(ValueError, match="1-D"):
        log_mel(np.stack([x, x], 1))


def test_close_to_kaldi_fbank_when_torchaudio_is_installed():
    """Same recipe as Kaldi's fbank but the window (Kaldi's "hanning" is symmetric, ours periodic).

    The window difference moves the lowest bands most (they hold one or two FFT bins), hence
    a median and a 99th percentile rather than a maximum (numpy emulation of the symmetric
    window: 0.004 and 0.03 on this signal).
    """
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    import torch

    cfg = FeatureConfig(preemphasis=None)
    x = (_sine(440, amp=0.3) + np.random.default_rng(7).normal(0, 0.05, 16000)).astype(np.float32)
    ref = kaldi.fbank(torch.from_numpy(x)[None], num_mel_bins=80, frame_length=25.0, frame_shift=10.0,
                      dither=0.0, preemphasis_coefficient=0.0, remove_dc_offset=False, window_type="hanning",
                      low_freq=20.0, high_freq=0.0, snip_edges=True, use_energy=False, use_power=True,
                      use_log_fbank=True, sample_frequency=16000.0).numpy()
    ours = log_mel(x, cfg)
    assert ref.shape == ours.shape
    d = np.abs(ref - ours)
    assert float(np.median(d)) < 0.02 and float(np.percentile(d, 99)) < 0.1


def test_blocked_computation_gives_the_same_numbers():
    """log_mel runs the FFT in blocks of frames; the result is the one-shot computation, frame by frame."""
    cfg = FeatureConfig()
    x = np.random.default_rng(8).uniform(-0.5, 0.5, 5 * 16000).astype(np.float32)  # 498 frames: 4 blocks
    feats = log_mel(x, cfg)
    one_shot = np.log(np.maximum(power_frames(x, cfg) @ mel_filterbank(cfg).T, cfg.log_floor)).astype(np.float32)
    np.testing.assert_allclose(feats, one_shot, rtol=0, atol=1e-5)
    head = log_mel(x[: 400 + 159 * 160], cfg)  # 160 frames: a block boundary inside
    np.testing.assert_allclose(head, feats[:160], rtol=0, atol=1e-5)


# ---------------------------------------------------------------- silence: remove_dc and floor_db

SPEECH_8K = FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, normalize=True)  # the shipped transcriber's recipe
ROBUST_8K = FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, normalize=True, remove_dc=True, floor_db=60.0)


def _syllables(gain=0.6, seed=0, rate=8000):
    """Three 0.3 s voiced syllables (harmonics of 110-150 Hz up to 3.8 kHz, a little breath noise) with
    0.2 s of digital silence before, between and after; peak 20 ms level about -10 dBFS at gain 0.6.
    Returns (samples, per-sample speech mask)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.3 * rate)) / rate
    env = np.sin(np.pi * t / t[-1]) ** 0.5
    parts, mask = [np.zeros(1600)], [np.zeros(1600, bool)]
    for f0 in (110.0, 130.0, 150.0):
        v = sum((0.5 / k) * np.sin(2 * np.pi * k * f0 * t + k) for k in range(1, int(3800 / f0)))
        v = v + 0.02 * rng.standard_normal(t.size)
        parts += [gain * env * v / np.abs(v).max(), np.zeros(1600)]
        mask += [np.ones(t.size, bool), np.zeros(1600, bool)]
    return np.concatenate(parts), np.concatenate(mask)


def _quiet_frames(mask, cfg):
    """Frames that hold no speech sample."""
    return np.array([not mask[i * cfg.hop_length: i * cfg.hop_length + cfg.win_length].any()
                     for i in range(cfg.n_frames(mask.size))])


def _noise(n, dbfs, seed=9):
    return np.random.default_rng(seed).standard_normal(n) * 10.0 ** (dbfs / 20.0)


def test_every_kind_of_silence_gives_the_same_features():
    """Digital zeros, a DC offset (1% and -5% of full scale) and a -90 dBFS noise floor under the same speech:
    one set of features with the new settings, far apart with the old recipe (the shipped one)."""
    x, mask = _syllables()
    quiet = _quiet_frames(mask, ROBUST_8K)
    zeros = log_mel(x, ROBUST_8K)
    hiss = log_mel(x + _noise(x.size, -90.0), ROBUST_8K)
    for offset in (0.01, -0.05):
        np.testing.assert_allclose(log_mel(x + offset, ROBUST_8K), zeros, rtol=0, atol=1e-5)
    assert np.all(zeros[quiet] == zeros[quiet][0])  # every silent frame is one and the same input
    raw = FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, remove_dc=True, floor_db=60.0)
    hiss_raw, zeros_raw = log_mel(x + _noise(x.size, -90.0), raw), log_mel(x, raw)
    assert np.all(hiss_raw[quiet] == hiss_raw.min())  # the noise floor is under the clamp: one constant,
    assert abs(float(hiss_raw.min() - zeros_raw.min())) < 1e-3  # which the noise moved only via the peak
    d = np.abs(hiss - zeros)  # in speech frames the -90 dBFS noise adds to the faintest high bands
    assert float(d.mean()) < 1e-3 and float(d.max()) < 0.1
    old_dc, old_hiss = log_mel(x + 0.01, SPEECH_8K), log_mel(x + _noise(x.size, -90.0), SPEECH_8K)
    old = log_mel(x, SPEECH_8K)
    assert np.abs(old_dc - old).max() > 1.0 and np.abs(old_hiss - old).max() > 0.5


def test_silence_alone_is_one_input_too():
    """A recording of nothing but zeros or a DC offset: every frame at the absolute floor (normalised: 0)."""
    for x in (np.zeros(4000), np.full(4000, -0.02), np.full(4000, 0.3)):
        raw = log_mel(x, FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, remove_dc=True, floor_db=60.0))
        assert np.all(raw == np.float32(math.log(1e-10)))
        assert np.abs(log_mel(x, ROBUST_8K)).max() < 1e-6


def test_floor_leaves_energies_above_it_bit_for_bit():
    """floor_db only raises energies under (utterance peak - floor_db dB) to that level; the rest are today's numbers."""
    x, mask = _syllables()
    x = x + _noise(x.size, -70.0)
    old = log_mel(x, FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256))
    new = log_mel(x, FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, floor_db=60.0))
    floor = float(new.min())
    assert abs(floor - (float(old.max()) - 6.0 * math.log(10.0))) < 1e-5  # 60 dB = 6 decades of energy
    above = old > floor
    assert 0.3 < above.mean() < 1.0  # both sides of the floor are exercised
    assert np.array_equal(new[above], old[above])
    assert np.all(new[~above] == np.float32(floor))


def test_remove_dc_is_kaldis_order():
    """Each raw frame's mean removed, then pre-emphasis inside the frame (Kaldi's ProcessWindow), written out."""
    cfg = FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, remove_dc=True)
    x = _syllables()[0][:4000] + 0.05
    win, hop, a = cfg.win_length, cfg.hop_length, cfg.preemphasis
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    rows = []
    for i in range(cfg.n_frames(x.size)):
        z = x[i * hop: i * hop + win] - x[i * hop: i * hop + win].mean()
        y = np.concatenate([[z[0] - a * z[0]], z[1:] - a * z[:-1]])
        rows.append(np.abs(np.fft.rfft(y * w, n=cfg.n_fft)) ** 2)
    np.testing.assert_allclose(power_frames(x, cfg), np.array(rows), rtol=1e-9, atol=1e-12)


def test_remove_dc_moves_only_the_lowest_bands_of_speech():
    x, mask = _syllables()
    base = FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256)
    old, new = log_mel(x, base), log_mel(x, FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, remove_dc=True))
    speech = ~_quiet_frames(mask, base)
    d = np.abs(new - old)[speech]
    high = mel_centers(base) > 300.0
    assert float(d[:, high].max()) < 0.01
    assert float(d[:, ~high].max()) > 0.01  # the frame means lived in the lowest filters


def test_quiet_speech_gives_the_loud_features_with_the_floor():
    """The floor is relative, so with normalisation a gain is invisible: speech 40 dB quieter (peak about
    -50 dBFS, above the transcriber's -60 dBFS silence test) gives the same features; with the old
    absolute floor the digital silence between syllables does not scale with it."""
    x, _ = _syllables()
    np.testing.assert_allclose(log_mel(0.01 * x, ROBUST_8K), log_mel(x, ROBUST_8K), rtol=0, atol=1e-4)
    assert np.abs(log_mel(0.01 * x, SPEECH_8K) - log_mel(x, SPEECH_8K)).max() > 0.1


def test_clipped_speech_keeps_the_floor_relative_to_its_own_peak():
    x, mask = _syllables()
    clipped = np.clip(8.0 * x, -0.5, 0.5)  # 18 dB of overdrive, flat-topped
    cfg = FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, remove_dc=True, floor_db=60.0)
    raw = log_mel(clipped, cfg)
    assert np.all(np.isfinite(raw))
    assert abs(float(raw.max() - raw.min()) - 6.0 * math.log(10.0)) < 1e-4
    quiet = _quiet_frames(mask, cfg)
    assert np.all(raw[quiet] == raw.min())
    f = log_mel(clipped, ROBUST_8K)
    assert np.all(np.isfinite(f)) and np.all(f[quiet] == f[quiet][0])


def _log_mel_before_the_silence_settings(samples, cfg):
    """log_mel as it was written before remove_dc / floor_db, step for step (same blocks, same numpy calls)."""
    x = np.asarray(samples).astype(np.float64, copy=False)
    n = cfg.n_frames(x.size)
    y = np.empty_like(x)
    y[0] = x[0]
    np.subtract(x[1:], cfg.preemphasis * x[:-1], out=y[1:])
    frames = np.lib.stride_tricks.sliding_window_view(y, cfg.win_length)[:: cfg.hop_length][:n]
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(cfg.win_length) / cfg.win_length)
    fb_t = mel_filterbank(cfg).T
    energies = np.empty((n, cfg.n_mels), dtype=np.float64)
    for i in range(0, n, 128):
        spec = np.fft.rfft(frames[i: i + 128] * w, n=cfg.n_fft, axis=1)
        energies[i: i + 128] = (spec.real * spec.real + spec.imag * spec.imag) @ fb_t
    feats = np.log(np.maximum(energies, cfg.log_floor))
    if cfg.normalize:
        feats = (feats - feats.mean(axis=0, keepdims=True)) / np.maximum(feats.std(axis=0, keepdims=True), 1e-5)
    return feats.astype(np.float32)


def test_a_recipe_without_the_new_settings_computes_todays_features_bit_for_bit():
    from edge_s2s.runtime.bundle import shipped_bundle

    # the preprocessing of the transcriber shipped before issue 17 (v1), as its manifest wrote it
    pre = {"type": "log_mel", "mel_scale": "htk", "window": "hann", "sample_rate": 8000, "n_mels": 40, "win_ms": 25.0,
           "hop_ms": 10.0, "n_fft": 256, "preemphasis": 0.97, "fmin": 20.0, "fmax": None, "log_floor": 1e-10,
           "normalize": True}
    shipped = json.loads((shipped_bundle("transcriber") / "manifest.json").read_text())["preprocessing"]
    assert shipped["floor_db"] == 60.0 and shipped["remove_dc"] is True  # today's default uses them
    cfg = FeatureConfig.from_dict(pre)
    assert cfg.floor_db is None and cfg.remove_dc is False and cfg == SPEECH_8K
    assert cfg.to_dict() == pre  # re-exported, the recipe is written exactly as before
    x, _ = _syllables()
    for signal in (x, x + 0.01, np.clip(8.0 * x, -0.5, 0.5), 0.001 * x, np.zeros(4000)):
        assert np.array_equal(log_mel(signal, cfg), _log_mel_before_the_silence_settings(signal, cfg))
    assert np.all(log_mel(np.zeros(4000), FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256))
                  == np.float32(math.log(1e-10)))  # digital silence still sits on the absolute floor


def test_silence_settings_round_trip_and_are_written_only_when_on():
    on = ROBUST_8K.to_dict()
    assert on["remove_dc"] is True and on["floor_db"] == 60.0
    assert FeatureConfig.from_dict(json.loads(json.dumps(on))) == ROBUST_8K
    half = FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256, floor_db=80.0).to_dict()
    assert half["floor_db"] == 80.0 and "remove_dc" not in half
    assert set(SPEECH_8K.to_dict()) == set(on) - {"remove_dc", "floor_db"}


@pytest.mark.parametrize("change,needle", [
    ({"floor_db": -5.0}, "floor_db must be null (off) or a number of decibels from 10 to 200, got -5.0"),
    ({"floor_db": 1e9}, "floor_db must be null"),
    ({"floor_db": 0}, "floor_db must be null"),
    ({"floor_db": "60"}, "floor_db must be null"),
    ({"floor_db": True}, "floor_db must be null"),
    ({"floor_db": float("nan")}, "floor_db must be null"),
    ({"remove_dc": "yes"}, "remove_dc must be true or false"),
    ({"remove_dc": 1}, "remove_dc must be true or false"),
])
def test_absurd_silence_settings_are_one_line_bundle_errors(change, needle):
    with pytest.raises(BundleError) as e:
        FeatureConfig.from_dict({**ROBUST_8K.to_dict(), **change})
    assert needle in str(e.value) and "\n" not in str(e.value) and "re-export" in str(e.value)
    with pytest.raises(ValueError):
        FeatureConfig(**{**dict(sample_rate=8000, n_mels=40, n_fft=256), **change})
