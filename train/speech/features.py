"""Training-side features: the runtime's own log-mel code, batched, plus SpecAugment masking.

Training never re-implements the features: `features_from_file` is the runtime's
`load_audio` + `log_mel`, so a bundle's model sees at inference exactly the numbers it was
trained on (tests/train/test_speech_features.py proves it bit for bit). SpecAugment
(Park et al., 2019) is a training-only option: it hides random frequency bands and time
spans so the listener cannot lean on any one of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ...runtime.media.audio import load_audio
from ...runtime.media.features import FeatureConfig, log_mel, mel_filterbank

__all__ = ["FeatureConfig", "log_mel", "mel_filterbank", "features_from_file", "batch_features", "SpecAugment",
           "spec_augment"]


def features_from_file(path: str | os.PathLike | bytes, cfg: FeatureConfig,
                       max_seconds: float | None = None) -> np.ndarray:
    """[frames, n_mels] float32 for one recording, read and resampled exactly as the runtime does."""
    samples, _ = load_audio(path, cfg.sample_rate, max_seconds=max_seconds)
    return log_mel(samples, cfg)


def batch_features(features: list[np.ndarray], pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Stack [T_i, n_mels] arrays into [B, max T, n_mels] float32 padded with `pad_value`, and int64 lengths [B]."""
    if not features:
        raise ValueError("batch_features needs at least one utterance")
    n_mels = {f.shape[1] for f in features}
    if len(n_mels) != 1:
        raise ValueError(f"utterances have different mel sizes {sorted(n_mels)}: compute them with one FeatureConfig")
    lengths = np.array([f.shape[0] for f in features], dtype=np.int64)
    out = np.full((len(features), int(lengths.max()), n_mels.pop()), pad_value, dtype=np.float32)
    for i, f in enumerate(features):
        out[i, : f.shape[0]] = f
    return out, lengths


@dataclass(frozen=True)
class SpecAugment:
    """SpecAugment masking as a training option (off when both counts are 0).

    n_freq_masks bands of width uniform in [0, F] mel bins; n_time_masks spans of width
    uniform in [0, T] frames, each at most max_time_fraction of the utterance (the paper's
    p, so short utterances are not wiped out). fill: "mean" (the utterance's mean, which
    is 0 for normalised features) or "zero".
    """

    n_freq_masks: int = 2
    F: int = 15
    n_time_masks: int = 2
    T: int = 40
    max_time_fraction: float = 0.2
    fill: str = "mean"

    def __post_init__(self) -> None:
        for name in ("n_freq_masks", "F", "n_time_masks", "T"):
            if getattr(self, name) < 0:
                raise ValueError(f"SpecAugment.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.max_time_fraction <= 1.0:
            raise ValueError(f"SpecAugment.max_time_fraction must be in (0, 1], got {self.max_time_fraction}")
        if self.fill not in ("mean", "zero"):
            raise ValueError(f"SpecAugment.fill must be 'mean' or 'zero', got {self.fill!r}")

    def __call__(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return spec_augment(features, rng, self.n_freq_masks, self.F, self.n_time_masks, self.T,
                            max_time_fraction=self.max_time_fraction, fill=self.fill)


def spec_augment(features: np.ndarray, rng: np.random.Generator, n_freq_masks: int, F: int, n_time_masks: int,
                 T: int, max_time_fraction: float = 1.0, fill: str = "mean") -> np.ndarray:
    """A masked copy of [frames, n_mels] `features` (the input is not modified); see `SpecAugment`."""
    x = np.array(features, dtype=np.float32, copy=True)
    if x.ndim != 2:
        raise ValueError(f"features must be [frames, n_mels], got shape {x.shape}")
    frames, n_mels = x.shape
    if frames == 0:
        return x
    value = np.float32(x.mean()) if fill == "mean" else np.float32(0.0)
    for _ in range(n_freq_masks):
        f = int(rng.integers(0, min(F, n_mels) + 1))
        f0 = int(rng.integers(0, n_mels - f + 1))
        x[:, f0 : f0 + f] = value
    t_max = min(T, int(max_time_fraction * frames))
    for _ in range(n_time_masks):
        t = int(rng.integers(0, t_max + 1))
        t0 = int(rng.integers(0, frames - t + 1))
        x[t0 : t0 + t, :] = value
    return x
