"""Training gets exactly the runtime's features (bit for bit), batching, and SpecAugment masks."""

import numpy as np
import pytest
import soundfile as sf

from edge_s2s.runtime.media import features as runtime_features
from edge_s2s.runtime.media.audio import load_audio
from edge_s2s.train.speech import features as speech_features
from edge_s2s.train.speech.features import FeatureConfig, SpecAugment, batch_features, features_from_file, spec_augment


def _recording(path, rate, channels=1, seconds=0.7, subtype="PCM_16"):
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(rate)
    x = 0.3 * np.sin(2 * np.pi * 350 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 + rng.normal(0, 0.01, t.size)
    sf.write(str(path), np.stack([x] * channels, 1) if channels > 1 else x, rate, subtype=subtype)
    return path


@pytest.mark.parametrize("rate,channels,subtype", [(8000, 1, "PCM_16"), (44100, 2, "PCM_24"), (16000, 1, "FLOAT")])
def test_training_features_equal_the_runtime_ones_bit_for_bit(tmp_path, rate, channels, subtype):
    path = _recording(tmp_path / "a.wav", rate, channels, subtype=subtype)
    for cfg in (FeatureConfig(), FeatureConfig(normalize=True, preemphasis=None),
                FeatureConfig(sample_rate=8000, n_mels=40, n_fft=256)):
        train = features_from_file(path, cfg)
        samples, _ = load_audio(path, cfg.sample_rate)  # what the runtime does with a user's file
        runtime = runtime_features.log_mel(samples, cfg)
        assert train.dtype == np.float32 and train.shape == runtime.shape and train.shape[0] > 10
        assert np.array_equal(train, runtime)


def test_the_training_helpers_are_the_runtime_code():
    assert speech_features.log_mel is runtime_features.log_mel
    assert speech_features.FeatureConfig is runtime_features.FeatureConfig
    assert speech_features.mel_filterbank is runtime_features.mel_filterbank


def test_batch_features_pads_and_keeps_lengths():
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(t, 8)).astype(np.float32) for t in (5, 9, 1)]
    batch, lengths = batch_features(feats, pad_value=-3.0)
    assert batch.shape == (3, 9, 8) and batch.dtype == np.float32 and lengths.tolist() == [5, 9, 1]
    for i, f in enumerate(feats):
        assert np.array_equal(batch[i, : f.shape[0]], f)
        assert np.all(batch[i, f.shape[0]:] == -3.0)
    with pytest.raises(ValueError, match="different mel sizes"):
        batch_features([np.zeros((2, 8)), np.zeros((2, 4))])
    with pytest.raises(ValueError):
        batch_features([])


def _masked_cells(before, after):
    changed = before != after
    cols = np.flatnonzero(changed.all(axis=0))
    rows = np.flatnonzero(changed.all(axis=1))
    covered = np.zeros_like(changed)
    covered[:, cols] = True
    covered[rows, :] = True
    return changed, covered, cols, rows


def test_spec_augment_masks_whole_bands_and_spans_only():
    feats = np.random.default_rng(1).normal(3.0, 1.0, size=(200, 40)).astype(np.float32)  # no cell equals the mean
    original = feats.copy()
    hits = 0
    for seed in range(20):
        out = spec_augment(feats, np.random.default_rng(seed), n_freq_masks=2, F=6, n_time_masks=2, T=15)
        assert np.array_equal(feats, original)  # the input is not modified
        changed, covered, cols, rows = _masked_cells(feats, out)
        assert np.array_equal(changed, covered)  # every change is part of a whole band or a whole span
        assert np.all(out[changed] == np.float32(feats.mean()))  # filled with the utterance mean
        assert np.array_equal(out[~changed], feats[~changed])  # the rest untouched
        assert len(cols) <= 2 * 6 and len(rows) <= 2 * 15
        hits += changed.any()
    assert hits >= 15  # masks do happen (a width may be drawn as 0)


def test_spec_augment_options():
    feats = np.random.default_rng(2).normal(size=(50, 20)).astype(np.float32)
    rng = np.random.default_rng
    assert np.array_equal(spec_augment(feats, rng(0), 0, 10, 0, 10), feats)  # off
    a = spec_augment(feats, rng(5), 1, 8, 1, 8, fill="zero")
    assert np.array_equal(a, spec_augment(feats, rng(5), 1, 8, 1, 8, fill="zero"))  # seeded
    changed = a != feats
    assert changed.any() and np.all(a[changed] == 0.0)
    only_time = spec_augment(feats, rng(3), 0, 0, 3, 40, max_time_fraction=0.1)
    changed, covered, cols, rows = _masked_cells(feats, only_time)
    assert len(cols) == 0 and len(rows) <= 3 * 5  # each span at most 10% of 50 frames
    aug = SpecAugment(n_freq_masks=1, F=4, n_time_masks=1, T=5, max_time_fraction=1.0)
    assert np.array_equal(aug(feats, rng(9)), spec_augment(feats, rng(9), 1, 4, 1, 5))
    with pytest.raises(ValueError):
        SpecAugment(fill="noise")
    with pytest.raises(ValueError):
        spec_augment(feats[0], rng(0), 1, 2, 1, 2)
    assert spec_augment(np.zeros((0, 20), np.float32), rng(0), 2, 5, 2, 5).shape == (0, 20)
