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
   (with `remove_dc`, each frame's DC is removed first: see below);
6. natural log of max(energy, log_floor), and with `floor_db` of max(energy, log_floor, peak floor):
   see below;
7. optionally, per-utterance mean/variance normalisation of each mel bin over time.

No dither and no randomness: the same samples always give the same features.

Silence. With the original settings alone, a pause of exact digital zeros sits at
ln(log_floor) = -23 in every bin, some 200 dB below any recorded pause (FSDD's pauses lie
30-60 dB below the speech): an input no model trained on recordings has seen, and with
`normalize` it also inflates every bin's deviation and so squashes the speech frames. Two
optional settings make every kind of silence the same input (both off when a manifest does
not name them, so older bundles keep their exact features):

- `remove_dc` removes each frame's mean before pre-emphasis and window (Kaldi's
  `remove_dc_offset`, on by default in Kaldi's feature-window.cc): a cheap microphone's DC
  offset, which pre-emphasis only scales by (1 - a), no longer puts energy in the lowest
  mel filter, and a constant signal becomes exact silence.
- `floor_db` clamps every mel energy of an utterance to at least its largest mel energy
  minus `floor_db` decibels (Whisper's log-mel clamp, `max(log_spec, log_spec.max() - 8.0)`
  in whisper/audio.py, is the same idea at 80 dB): digital zeros, a DC offset and a noise
  floor whose mel energies are more than `floor_db` under the utterance's loudest one all
  become the same constant (with speech peaking near -16 dBFS and floor_db 60, a -90 dBFS
  hiss is under it but for rare high-band frames). Speech energies above the floor are
  untouched, bit for bit. The floor is relative, so with `normalize` a gain on the whole
  input leaves the features unchanged (quiet speech is not eaten by an absolute floor) as
  long as the relative floor stays above `log_floor`: at 8 kHz with floor_db 60, speech
  down to about -60 dBFS, the level the transcriber calls silence. Kaldi's alternative,
  dither (random noise of about -90 dBFS added to the samples), makes silence faint noise
  rather than one input, equal only statistically, and needs randomness that export parity
  and golden cases would have to seed.
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
         "fmin", "fmax", "log_floor", "normalize", "remove_dc", "floor_db"}
FLOOR_DB_RANGE = (10.0, 200.0)  # floor_db outside it is a mistake: below 10 dB eats speech, above 200 dB never acts


@dataclass(frozen=True)
class FeatureConfig:
    """How samples become log-mel frames; lives in the bundle manifest's "preprocessing" dict.

    sample_rate: the rate audio is resampled to before features (Hz). win_ms / hop_ms: frame
    length and shift. n_fft: FFT size (>= the window in samples). preemphasis: the filter
    coefficient, or None for none. fmin / fmax: the mel filters' range in Hz (fmax None =
    sample_rate / 2). log_floor: energies below it are clamped before the log (silence
    stays finite). normalize: subtract each mel bin's mean over the utterance and divide
    by its standard deviation (removes the microphone's and the speaker's level).
    remove_dc: remove each frame's mean before pre-emphasis (Kaldi's remove_dc_offset).
    floor_db: None, or clamp each mel energy to at least the utterance's largest minus this
    many decibels (Whisper's clamp is 80 dB), so all silence gives the same features.
    The last two are off by default, which is the recipe of bundles exported before them;
    training turns them on (train/speech/loop.py `default_features`).
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
    remove_dc: bool = False
    floor_db: float | None = None

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
        if not isinstance(self.remove_dc, (bool, np.bool_)):
            raise ValueError(f"remove_dc must be true or false, got {self.remove_dc!r}")
        lo, hi = FLOOR_DB_RANGE
        if self.floor_db is not None and not (is_num(self.floor_db) and lo <= self.floor_db <= hi):
            raise ValueError(f"floor_db must be null (off) or a number of decibels from {lo:g} to {hi:g}, "
                             f"got {self.floor_db!r}")
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
        """The manifest's "preprocessing" dict (JSON types only); the fixed choices are recorded too.

        remove_dc and floor_db are written only when on: a recipe without them gives exactly the
        dict of the exporters before them, which older runtimes still read.
        """
        d = {
            "type": FEATURE_TYPE, "mel_scale": MEL_SCALE, "window": WINDOW,
            "sample_rate": int(self.sample_rate), "n_mels": int(self.n_mels),
            "win_ms": float(self.win_ms), "hop_ms": float(self.hop_ms), "n_fft": int(self.n_fft),
            "preemphasis": None if self.preemphasis is None else float(self.preemphasis),
            "fmin": float(self.fmin), "fmax": None if self.fmax is None else float(self.fmax),
            "log_floor": float(self.log_floor), "normalize": bool(self.normalize),
        }
        if self.remove_dc:
            d["remove_dc"] = True
        if self.floor_db is not None:
            d["floor_db"] = float(self.floor_db)
        return d

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


def _frames(samples: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-2: [frames, win] float64 views of the pre-emphasised signal and of the signal itself
    (whose frame means `remove_dc` subtracts)."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"samples must be 1-D (mono), got shape {x.shape}")
    x = x.astype(np.float64, copy=False)
    n = cfg.n_frames(x.size)
    if n == 0:
        empty = np.zeros((0, cfg.win_length), dtype=np.float64)
        return empty, empty
    if cfg.preemphasis is not None and cfg.preemphasis != 0.0:
        y = np.empty_like(x)
        y[0] = x[0]
        np.subtract(x[1:], cfg.preemphasis * x[:-1], out=y[1:])
    else:
        y = x

    def view(z: np.ndarray) -> np.ndarray:
        return np.lib.stride_tricks.sliding_window_view(z, cfg.win_length)[:: cfg.hop_length][:n]

    return view(y), view(x)


def _power(frames: np.ndarray, raw: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Steps 3-4 for a block of pre-emphasised frames (`raw`: the same frames before pre-emphasis).

    remove_dc in Kaldi's order (ProcessWindow: the raw frame's mean removed, then pre-emphasis
    inside the frame): pre-emphasising x - m gives y - (1 - a) m on every sample but the first,
    and the periodic Hann window's first weight is exactly 0, so subtracting (1 - a) m from the
    pre-emphasised frame is the same. A constant signal then gives (rounding-level) zero energy.
    """
    if cfg.remove_dc:
        keep = 1.0 - (cfg.preemphasis or 0.0)
        frames = frames - keep * raw.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(frames * _window(cfg.win_length), n=cfg.n_fft, axis=1)
    return spec.real * spec.real + spec.imag * spec.imag


def power_frames(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Steps 1-4: [frames, n_fft // 2 + 1] float64 power spectrum of the windowed frames."""
    return _power(*_frames(samples, cfg), cfg)


def log_mel(samples: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Mono samples at cfg.sample_rate -> [frames, n_mels] float32 log-mel features (see module doc).

    Frames go through the FFT in blocks of `_BLOCK` so the working set stays in cache: three
    times faster on 10 s of audio than one FFT over all frames, and the same numbers.
    """
    frames, raw = _frames(samples, cfg)
    fb_t = _filterbank(cfg).T
    energies = np.empty((frames.shape[0], cfg.n_mels), dtype=np.float64)
    for i in range(0, frames.shape[0], _BLOCK):
        energies[i: i + _BLOCK] = _power(frames[i: i + _BLOCK], raw[i: i + _BLOCK], cfg) @ fb_t
    floor = cfg.log_floor
    if cfg.floor_db is not None and energies.size:
        floor = max(floor, float(energies.max()) * 10.0 ** (-cfg.floor_db / 10.0))
    feats = np.log(np.maximum(energies, floor))
    if cfg.normalize and feats.shape[0]:
        mean = feats.mean(axis=0, keepdims=True)
        std = feats.std(axis=0, keepdims=True)
        feats = (feats - mean) / np.maximum(std, _NORM_EPS)
    return feats.astype(np.float32)
