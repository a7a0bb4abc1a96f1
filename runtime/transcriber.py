"""Speech recognition: a recording in, characters out, with the same bundle contract and search loop.

    asr = Transcriber.load("bundles/digits")
    r = asr.transcribe(["call.wav", flac_bytes, samples_at_bundle_rate], search=Beam(5))
    r[0].text, r[0].score, r[0].token_times()      # seconds of each character's attention peak

Audio is read by `runtime.audio.load_audio` at the manifest's sample rate (any WAV sample
format, stereo, any rate: the same function training used), turned into log-mel frames by
`runtime.features.log_mel` with the manifest's recipe, run through the encoder (a pyramidal
BLSTM, 2**pyramid_layers time reduction) and decoded by the usual loop. Characters are
joined as the bundle's unit says (manifest model "unit", "char" by default).

A recording with no sound (`audio.is_silence`) is not an error: its Transcript has an empty
text and `note` set. A recording longer than the model's limit (manifest preprocessing
"max_seconds", else DEFAULT_MAX_SECONDS) is an InputError naming the limit: attention over
minutes of frames was never trained and only costs time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AudioInput, describe, is_silence, load_audio
from .bundle import Bundle
from .errors import BundleError, EdgeS2SError, InputError
from .features import FeatureConfig, log_mel
from .loop_common import Timings
from .results import Hypothesis, RawHypothesis, Result, TokenEvent
from .search import Greedy, SearchConfig
from .seq2seq import Seq2Seq
from .text import join_units

FEATURES, FEATURE_LENGTHS = "features", "feature_lengths"
ERRORS = ("raise", "keep")
# Without a limit in the manifest: 30 s is three times the longest utterance the digit-string
# data builders make (10 digits with pauses), and still well under a second to decode.
DEFAULT_MAX_SECONDS = 30.0
SILENCE_NOTE = "silence only: nothing to transcribe (empty transcript)"

SpeechInput = AudioInput | np.ndarray


@dataclass
class Transcript(Result):
    """A Result for one recording, plus what speech adds.

    note: set (text empty) when the recording is silence only. duration: seconds of audio.
    frame_seconds: seconds per encoder position (time reduction * hop), for `token_times`.
    """

    note: str | None = None
    duration: float = 0.0
    frame_seconds: float = 0.0

    def token_times(self, index: int = 0) -> list[float]:
        """Start time (s) of each token of hypothesis `index`: its attention peak over the encoder frames."""
        if not self.hypotheses:
            return []
        att = self.hypotheses[index].attention
        if att is None or att.size == 0:
            return []
        return [round(float(i) * self.frame_seconds, 4) for i in np.argmax(att, axis=1)]


class Transcriber(Seq2Seq):
    """A loaded speech-recognition bundle (manifest task "transcribe", preprocessing type "log_mel")."""

    def _setup_input(self, pre: dict) -> None:
        pre = dict(pre)
        max_seconds = pre.pop("max_seconds", None)
        self.features = FeatureConfig.from_dict(pre)
        if max_seconds is None:
            max_seconds = DEFAULT_MAX_SECONDS
        if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0:
            raise BundleError(f"manifest preprocessing max_seconds is {max_seconds!r}, not a positive number of "
                              "seconds: re-export the bundle")
        self.max_seconds = float(max_seconds)
        info = self.bundle.manifest.model
        self.unit = str(info.get("unit", "char"))
        self.time_reduction = 2 ** int(info.get("pyramid_layers", 3))

    @classmethod
    def load(cls, path: str | Path | None = None, provider: str = "cpu", threads: int = 0, optimization: str = "all",
             loop: str = "compiled") -> Transcriber:
        """Load a speech-recognition bundle (there is no default model yet: a path is required)."""
        if path is None:
            raise BundleError("no default transcriber is shipped yet: pass a bundle (--bundle DIR, or "
                              "Transcriber.load(DIR)) written by the speech exporter")
        return cls(Bundle.load(path, provider=provider, threads=threads, optimization=optimization), loop=loop)

    @property
    def frame_seconds(self) -> float:
        """Seconds of audio per encoder position."""
        return self.time_reduction * self.features.hop_length / self.features.sample_rate

    def memory_length(self, frames: int) -> int:
        """Encoder positions for `frames` log-mel frames: ceil(frames / time_reduction)."""
        return -(-frames // self.time_reduction)

    # --- input ---------------------------------------------------------------------------

    def samples(self, source: SpeechInput, index: int = 0) -> np.ndarray:
        """Mono float32 samples at the bundle's rate for one input; InputError naming it when unusable."""
        rate = self.features.sample_rate
        if not isinstance(source, np.ndarray):
            return load_audio(source, rate, self.max_seconds)[0]
        name = f"array input {index}"
        if source.ndim != 1:
            raise InputError(f"{name} has shape {source.shape}: pass mono samples as a 1-D array (average the "
                             "channels), or the file itself")
        if not np.issubdtype(source.dtype, np.floating):
            raise InputError(f"{name} has dtype {source.dtype}: pass float samples in [-1, 1] at {rate} Hz "
                             "(divide int16 samples by 32768)")
        if source.size == 0:
            raise InputError(f"{name} has no samples: pass at least {self.features.win_ms:g} ms of audio")
        if source.size / rate > self.max_seconds:
            raise InputError(f"{name} is {source.size / rate:.1f} s long at {rate} Hz, more than the limit of "
                             f"{self.max_seconds:g} s: cut it into shorter pieces (e.g. at pauses)")
        x = np.asarray(source, dtype=np.float32)
        if not np.isfinite(x).all():
            raise InputError(f"{name} contains NaN or infinite samples: pass finite samples in [-1, 1]")
        peak = float(np.max(np.abs(x)))
        return np.ascontiguousarray(x / np.float32(peak) if peak > 1.0 else x)

    def encode_features(self, features: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        """Encoder outputs by name for frames [B, T, n_mels] and their lengths [B]."""
        feeds = {FEATURES: np.ascontiguousarray(features, dtype=np.float32),
                 FEATURE_LENGTHS: np.asarray(lengths, dtype=np.int64)}
        missing = [n for n in self._enc_inputs if n not in feeds]
        if missing:
            raise EdgeS2SError(f"encoder inputs {missing} are not speech inputs: this bundle needs a newer runtime")
        outs = self.bundle.encoder.run(self._enc_outputs, {n: feeds[n] for n in self._enc_inputs})
        return dict(zip(self._enc_outputs, outs))

    def decode_features(self, features: np.ndarray, lengths: np.ndarray, search: SearchConfig = Greedy(),
                        max_length: int | None = None, min_length: int = 0,
                        callback: Callable[[TokenEvent], bool | None] | None = None,
                        timings: Timings | None = None) -> list[list[RawHypothesis]]:
        """Encoder + search for one batch of log-mel frames (no text)."""
        t0 = time.perf_counter_ns()
        enc = self.encode_features(features, lengths)
        if timings is not None:
            timings.encoder_ns.append(time.perf_counter_ns() - t0)
        return self.decode_encoded(enc, search, max_length, min_length, callback, timings)

    def _frames(self, source: SpeechInput, index: int) -> tuple[np.ndarray | None, float]:
        """(log-mel frames, or None for silence only; seconds of audio)."""
        x = self.samples(source, index)
        rate = self.features.sample_rate
        if is_silence(x, rate):
            return None, x.size / rate
        feats = log_mel(x, self.features)
        if feats.shape[0] == 0:
            raise InputError(f"{_name(source, index)} is {1000 * x.size / rate:.0f} ms long, shorter than one "
                             f"{self.features.win_ms:g} ms frame: record at least a second of speech")
        return feats, x.size / rate

    # --- the API -----------------------------------------------------------------------------

    def transcribe(self, inputs: list[SpeechInput], search: SearchConfig = Greedy(), max_length: int | None = None,
                   min_length: int = 0, batch_size: int = 8, errors: str = "raise",
                   callback: Callable[[TokenEvent], bool | None] | None = None,
                   timings: Timings | None = None) -> list[Transcript]:
        """Transcribe every recording (paths, file bytes, or float samples at the bundle's rate); one
        Transcript per input, in input order.

        errors="raise": an unusable input raises InputError naming it (nothing is transcribed);
        errors="keep": its Transcript has `error` set and no hypotheses, the others are still done.
        """
        if errors not in ERRORS:
            raise InputError(f"errors must be 'raise' or 'keep', got {errors!r}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if not isinstance(inputs, (list, tuple)):
            raise InputError("transcribe() takes a list of recordings (paths, bytes or 1-D float arrays): "
                             "wrap a single recording in a list")
        if not inputs:
            raise InputError("no recordings given: pass at least one")
        self._check_call(search, callback, max_length, min_length)
        results: list[Transcript | None] = [None] * len(inputs)
        for start in range(0, len(inputs), batch_size):
            frames: list[tuple[int, np.ndarray, float]] = []
            for i in range(start, min(start + batch_size, len(inputs))):
                try:
                    feats, seconds = self._frames(inputs[i], i)
                except InputError as e:
                    if errors == "raise":
                        raise
                    msg, name = str(e), _name(inputs[i], i)
                    results[i] = Transcript([], error=msg if name in msg else f"{name}: {msg}")
                    continue
                if feats is None:
                    results[i] = self._silent(seconds)
                else:
                    frames.append((i, feats, seconds))
            if frames:
                self._decode_chunk(frames, results, search, max_length, min_length, callback, timings)
        return results  # type: ignore[return-value]

    def _silent(self, seconds: float) -> Transcript:
        empty = Hypothesis(ids=[], tokens=[], text="", score=0.0, log_prob=0.0, attention=np.zeros((0, 0), np.float32))
        return Transcript([empty], note=SILENCE_NOTE, duration=seconds, frame_seconds=self.frame_seconds)

    def _decode_chunk(self, frames: list[tuple[int, np.ndarray, float]], results: list, search: SearchConfig,
                      max_length: int | None, min_length: int, callback, timings: Timings | None) -> None:
        """Pad the chunk's frames into one batch, decode it, fill `results` at the inputs' indices."""
        lengths = np.array([f.shape[0] for _, f, _ in frames], dtype=np.int64)
        batch = np.zeros((len(frames), int(lengths.max()), self.features.n_mels), np.float32)
        for b, (_, f, _) in enumerate(frames):
            batch[b, : f.shape[0]] = f
        cb = _remap_callback(callback, [i for i, _, _ in frames])
        raws = self.decode_features(batch, lengths, search, max_length, min_length, cb, timings)
        for (i, f, seconds), r in zip(frames, raws):
            res = self._result(r, self.memory_length(f.shape[0]))
            results[i] = Transcript(res.hypotheses, duration=seconds, frame_seconds=self.frame_seconds)

    def _result(self, raws: list[RawHypothesis], src_len: int) -> Result:
        res = super()._result(raws, src_len)
        for h in res.hypotheses:
            h.text = join_units(h.tokens, self.unit)
        return res


def _remap_callback(callback: Callable[[TokenEvent], bool | None] | None, index: list[int]):
    """`callback` seeing input indices instead of rows of a chunk that skipped unreadable inputs."""
    if callback is None:
        return None

    def remapped(ev: TokenEvent):
        ev.batch_index = index[ev.batch_index]
        return callback(ev)

    return remapped


def _name(source: SpeechInput, index: int) -> str:
    if isinstance(source, np.ndarray):
        return f"array input {index}"
    return describe(source, None if isinstance(source, (str, os.PathLike)) else index)
