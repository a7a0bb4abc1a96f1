"""Waveform augmentation for speech training: perturbed copies of training recordings (issue 17, item 2).

Five human training speakers (FSDD) and a few synthetic voice families are too few voices for a
model to generalise to a new one. Each augmented copy of a training string applies, from a generator
seeded per copy:

- speed perturbation (Ko et al. 2015, "Audio augmentation for speech recognition", as in Kaldi's
  `speed-perturb`): resampling by a factor 0.9-1.1 changes tempo and pitch together, so a copy
  sounds like a slightly different vocal tract;
- gain: -30..+6 dB, clipped at full scale (a quiet recording, and one that clips);
- additive noise at a signal-to-noise ratio of 0-30 dB, white or brown (a rumbling room),
  over the whole string, pauses included (so some pauses are no longer digital silence);
- a telephone channel: a 300-3400 Hz band-pass (4th-order Butterworth) followed by 8-bit
  mu-law coding, as in a G.711 call.

The copies are written as a digit set (wav/*.wav + manifest.jsonl) whose rows keep the source
row's transcript and speaker and say what was done (`augment`), so speaker-level splits still hold.
Only TRAINING rows are ever augmented.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ...runtime.media.audio import load_audio
from .data import _wav_bytes, read_manifest, write_manifest


@dataclass(frozen=True)
class AugmentConfig:
    speed: tuple[float, float] = (0.9, 1.1)
    gain_db: tuple[float, float] = (-30.0, 6.0)
    p_noise: float = 0.6
    snr_db: tuple[float, float] = (0.0, 30.0)
    p_brown: float = 0.5  # of the noisy copies: brown (1/f^2) noise instead of white
    p_telephone: float = 0.3

    def __post_init__(self) -> None:
        lo, hi = self.speed
        if not 0.5 <= lo <= hi <= 2.0:
            raise ValueError(f"speed range must lie within 0.5..2.0 and be ordered, got {self.speed}")
        for name in ("p_noise", "p_brown", "p_telephone"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {getattr(self, name)}")
        if self.gain_db[0] > self.gain_db[1] or self.snr_db[0] > self.snr_db[1]:
            raise ValueError("gain_db and snr_db are (low, high) ranges")


def change_speed(samples: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """The recording played `factor` times faster (tempo and pitch), at the same sample rate."""
    import soxr

    if factor == 1.0:
        return samples.astype(np.float32, copy=True)
    return soxr.resample(samples.astype(np.float32), rate, rate / factor).astype(np.float32)


def speech_power(samples: np.ndarray, rate: int) -> float:
    """Mean power of the loudest half of the 10 ms frames: the speech, not the pauses around it."""
    hop = max(rate // 100, 1)
    n = samples.size // hop
    if n == 0:
        return float(np.mean(samples.astype(np.float64) ** 2)) if samples.size else 0.0
    frames = samples[: n * hop].astype(np.float64).reshape(n, hop)
    power = np.sort(np.mean(frames**2, axis=1))
    return float(np.mean(power[n // 2:]))


def noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power white or brown noise."""
    x = rng.standard_normal(n)
    if kind == "brown":
        x = np.cumsum(x)
        x -= np.linspace(x[0], x[-1], n) if n > 1 else x  # no drift: a random walk's trend is not sound
        x -= x.mean()
    elif kind != "white":
        raise ValueError(f"noise kind must be 'white' or 'brown', got {kind!r}")
    p = float(np.mean(x**2))
    return (x / np.sqrt(p) if p > 0 else x).astype(np.float32)


def add_noise(samples: np.ndarray, rate: int, snr_db: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """`samples` plus noise `snr_db` below the speech's power (`speech_power`)."""
    p = speech_power(samples, rate)
    if p <= 0.0:
        return samples.copy()
    level = np.sqrt(p / 10.0 ** (snr_db / 10.0))
    return (samples + level * noise(samples.size, kind, rng)).astype(np.float32)


def telephone(samples: np.ndarray, rate: int) -> np.ndarray:
    """A G.711-like channel: 300-3400 Hz band-pass, then 8-bit mu-law coding and decoding."""
    from scipy.signal import butter, sosfilt

    high = min(3400.0, 0.45 * rate)
    sos = butter(4, [300.0, high], btype="bandpass", fs=rate, output="sos")
    x = np.clip(sosfilt(sos, samples.astype(np.float64)), -1.0, 1.0)
    mu = 255.0
    coded = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127.0) / 127.0
    return (np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu).astype(np.float32)


def augment(samples: np.ndarray, rate: int, cfg: AugmentConfig, rng: np.random.Generator
            ) -> tuple[np.ndarray, dict]:
    """One perturbed copy of `samples` and what was done to it (for the manifest)."""
    what: dict = {"speed": round(float(rng.uniform(*cfg.speed)), 3)}
    x = change_speed(samples, rate, what["speed"])
    if rng.random() < cfg.p_telephone:
        x = telephone(x, rate)
        what["telephone"] = True
    if rng.random() < cfg.p_noise:
        what["noise"] = "brown" if rng.random() < cfg.p_brown else "white"
        what["snr_db"] = round(float(rng.uniform(*cfg.snr_db)), 1)
        x = add_noise(x, rate, what["snr_db"], what["noise"], rng)
    what["gain_db"] = round(float(rng.uniform(*cfg.gain_db)), 1)
    x = np.clip(x * 10.0 ** (what["gain_db"] / 20.0), -1.0, 1.0).astype(np.float32)
    return x, what


def augment_set(manifests: Sequence[str | Path], out_dir: str | Path, n: int, seed: int, rate: int,
                cfg: AugmentConfig = AugmentConfig(), prefix: str = "aug-") -> Path:
    """`n` augmented copies of rows drawn from `manifests` (training sets only), as a digit set under `out_dir`.

    Copy i is drawn and perturbed from a generator seeded by (seed, i), so the set is reproducible
    and a larger `n` keeps the first copies. Returns the manifest path.
    """
    rows = [r for m in manifests for r in read_manifest(m)]  # audio paths resolved against each manifest
    if not rows:
        raise ValueError(f"no rows to augment in {[str(m) for m in manifests]}")
    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        src = rows[int(rng.integers(len(rows)))]
        samples, _ = load_audio(src["audio"], rate)
        x, what = augment(samples, rate, cfg, rng)
        uid = f"{prefix}{i:05d}-{src['id']}"
        rel = f"wav/{uid}.wav"
        (out / rel).write_bytes(_wav_bytes(x, rate))
        written.append({"id": uid, "audio": rel, "transcript": src["transcript"], "speaker": src.get("speaker"),
                        "kind": src.get("kind"), "source": src["id"], "augment": what,
                        "duration": round(x.size / rate, 4)})
    (out / "augment.json").write_text(json.dumps({"seed": seed, "n": n, **asdict(cfg)}, indent=1)
                                      + "\n", encoding="utf-8")
    return write_manifest(out / "manifest.jsonl", written)
