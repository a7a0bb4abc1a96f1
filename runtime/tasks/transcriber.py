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
"max_seconds", else DEFAULT_MAX_SECONDS; attention over minutes of frames was never trained)
is cut in its pauses into pieces under the limit (`audio.split_on_silence`); the pieces are
transcribed like separate recordings and joined: one hypothesis whose text joins the pieces'
with a space, whose ids, tokens and attention rows are concatenated, attention placed over the
whole recording's encoder positions (so `token_times` counts from the recording's start), and
`pieces` says where the cuts fell. Where no pause allows a cut, it is an InputError naming the
limit. A bundle may also name a shorter "split_seconds": recordings longer than it are cut at their
pauses into pieces of about that length (a piece with no pause stays whole up to max_seconds), because
a model trained on short strings reads a long one better piece by piece (issue 17; without it a
bundle splits only past max_seconds, as before).

How many tokens a decode may produce follows the recording: each piece (a whole recording is one
piece) may produce `step_limit(seconds)` = ceil(seconds x rate x RATE_MARGIN) + STEP_SLACK tokens,
the end token included, at most MAX_LENGTH_CEILING; rate is the manifest's `max_tokens_per_second`
(the fastest training recording's output rate, written by the export). A bundle without it (exported
before the field existed) gets DEFAULT_TOKENS_PER_SECOND, and never fewer steps than its own max_length.
A caller's max_length replaces the derived limit for every piece. When the best hypothesis of a
piece reaches its limit without the end token, the Transcript's `warning` says so (the text may be
cut): never a silent cut. Pieces are decoded in batches with the batch's largest limit; a piece
that needed more than its own is decoded again alone with it, so the result never depends on
what it was batched with. The attention of every hypothesis (greedy and beam) is `Hypothesis.attention` [tokens, L];
`runtime.pictures.speech_attention` draws it under the log-mel spectrogram (`Transcriber.log_mel`).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bundle import Bundle, shipped_bundle
from ..errors import BundleError, EdgeS2SError, InputError, int_option
from ..loop_common import Timings
from ..manifest import MAX_LENGTH_CEILING, wrong_task
from ..media.audio import SPLIT_GAP_MS, AudioInput, describe, is_silence, load_audio, split_on_silence
from ..media.features import FEATURE_TYPE, FeatureConfig, log_mel
from ..results import Hypothesis, RawHypothesis, Result, TokenEvent
from ..search import Beam, Greedy, SearchConfig
from ..session import create_session, default_threads, graph_errors, thread_policy
from ..text import join_units
from .seq2seq import Seq2Seq

FEATURES, FEATURE_LENGTHS = "features", "feature_lengths"
ERRORS = ("raise", "keep")
# Without a limit in the manifest: 30 s is three times the longest utterance the digit-string
# data builders make (10 digits with pauses), and still well under a second to decode.
DEFAULT_MAX_SECONDS = 30.0
# Longer recordings are refused before decoding: an hour is 115 MB of float32 at 8 kHz, and
# hundreds of pieces; a longer file is better cut by the user's own tools.
LONGEST_SECONDS = 3600.0
SILENCE_NOTE = "silence only: nothing to transcribe (empty transcript)"
# The step limit of a piece of `seconds`: ceil(seconds * rate * RATE_MARGIN) + STEP_SLACK tokens. The
# margin covers speakers faster than any in training; the slack is the end token and a few more for
# recordings shorter than one token's time.
RATE_MARGIN = 1.5
STEP_SLACK = 4
# The rate of bundles whose manifest has no max_tokens_per_second: fast read English is 12-15
# characters a second, spaces included, and a word or subword unit is slower still; generous on
# purpose (a looping model then costs at most a few hundred steps a piece), since too low cuts text.
DEFAULT_TOKENS_PER_SECOND = 15.0

SpeechInput = AudioInput | np.ndarray


@dataclass
class Transcript(Result):
    """A Result for one recording, plus what speech adds.

    note: set when the recording is silence only (text empty) or was split at pauses.
    duration: seconds of audio. frame_seconds: seconds per encoder position (time reduction *
    hop), for `token_times`. pieces: (start, end) seconds of each piece a recording longer
    than the model's limit was cut into (empty when it was transcribed whole).
    step_limits: the most tokens (end token included) each decoded piece was allowed, in order
    (one for a recording transcribed whole, none for silence).
    warning: set when a piece's best hypothesis stopped at its step limit before the end token:
    the text may be cut short (a larger max_length lets it finish).
    """

    note: str | None = None
    duration: float = 0.0
    frame_seconds: float = 0.0
    pieces: list[tuple[float, float]] = field(default_factory=list)
    step_limits: list[int] = field(default_factory=list)
    warning: str | None = None

    @property
    def cut(self) -> bool:
        """Whether a step limit stopped the transcript before the model ended it."""
        return self.warning is not None

    def token_times(self, index: int = 0) -> list[float]:
        """Start time (s) of each token of hypothesis `index`, never decreasing: its attention peak over
        the encoder frames.

        A space has no sound of its own, so its attention peak can fall anywhere (often back at the
        start): a space is placed halfway between the peaks of the tokens either side of it, and
        every time is at least the one before (a stray peak does not put a token before its left
        neighbour), so the times read left to right like the text.
        """
        if not self.hypotheses:
            return []
        h = self.hypotheses[index]
        att = h.attention
        if att is None or att.size == 0:
            return []
        peaks = np.argmax(att, axis=1).astype(np.float64)
        space = [k < len(h.tokens) and not h.tokens[k].strip() for k in range(len(peaks))]
        left, right = [np.nan] * len(peaks), [np.nan] * len(peaks)  # nearest sounded peak each side
        for k in range(1, len(peaks)):
            left[k] = peaks[k - 1] if not space[k - 1] else left[k - 1]
        for k in range(len(peaks) - 2, -1, -1):
            right[k] = peaks[k + 1] if not space[k + 1] else right[k + 1]
        for k in range(len(peaks)):
            if space[k] and not (np.isnan(left[k]) and np.isnan(right[k])):
                peaks[k] = np.nanmean([left[k], right[k]])
        peaks = np.maximum.accumulate(peaks)
        return [round(float(p) * self.frame_seconds, 4) for p in peaks]



def rate_step_limit(seconds: float, tokens_per_second: float) -> int:
    """ceil(seconds x tokens_per_second x RATE_MARGIN) + STEP_SLACK, at most MAX_LENGTH_CEILING: the
    step limit of `seconds` of audio (the export sizes max_length with it too)."""
    return min(math.ceil(max(0.0, seconds) * tokens_per_second * RATE_MARGIN) + STEP_SLACK, MAX_LENGTH_CEILING)


def default_transcriber_path() -> Path:
    """Where the default transcriber (spoken digit strings) ships inside the package."""
    return shipped_bundle("transcriber")

class Transcriber(Seq2Seq):
    """A loaded speech-recognition bundle (manifest task "transcribe", preprocessing type "log_mel")."""

    def _setup_input(self, pre: dict) -> None:
        if pre.get("type") != FEATURE_TYPE:
            raise wrong_task(self.bundle.manifest.task, "transcribe")
        pre = dict(pre)
        max_seconds = pre.pop("max_seconds", None)
        split = pre.pop("split_seconds", None)
        self.features = FeatureConfig.from_dict(pre)
        if max_seconds is None:
            max_seconds = DEFAULT_MAX_SECONDS
        if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0:
            raise BundleError(f"manifest preprocessing max_seconds is {max_seconds!r}, not a positive number of "
                              "seconds: re-export the bundle")
        self.max_seconds = float(max_seconds)
        if split is not None and (isinstance(split, bool) or not isinstance(split, (int, float))
                                  or not 0 < split <= self.max_seconds):
            raise BundleError(f"manifest preprocessing split_seconds is {split!r}, not a number of seconds in "
                              f"(0, max_seconds={self.max_seconds:g}]: re-export the bundle")
        self.split_seconds = self.max_seconds if split is None else float(split)
        rate = self.bundle.manifest.max_tokens_per_second
        self.tokens_per_second = float(rate) if rate is not None else DEFAULT_TOKENS_PER_SECOND
        self.rate_recorded = rate is not None
        info = self.bundle.manifest.model
        self.unit = str(info.get("unit", "char"))
        self.time_reduction = 2 ** int(info.get("pyramid_layers", 3))
        self._solo: _SoloEncoder | None = None  # set by load() under the default thread policy
        # an encoder whose int8 ops scale the whole padded batch at once (ORT's DynamicQuantizeLSTM)
        # runs one recording at a time (see encode_features); the exporter declares it, and bundles
        # exported before it did are known by their int8 "all" label
        coupled = info.get("couples_batch")
        self.encoder_couples_batch = ("encoder" in coupled if isinstance(coupled, list)
                                      else info.get("int8") == "all")

    @classmethod
    def load(cls, path: str | Path | None = None, provider: str = "cpu", threads: int = 0, optimization: str = "all",
             loop: str = "compiled") -> Transcriber:
        """Load a speech-recognition bundle; no path = the default digit-string model shipped with edge-s2s."""
        if path is None:
            path = default_transcriber_path()
            if not (path / "manifest.json").is_file():
                raise BundleError(f"the default transcriber is not installed at {path}: reinstall edge-s2s, or pass "
                                  "--bundle with a bundle from `edge-s2s export`")
        policy = threads == 0 and provider == "cpu" and default_threads() > 1
        tr = cls(Bundle.load(path, provider=provider, threads=threads, optimization=optimization,
                             step_threads=1 if policy else None), loop=loop)
        if policy:
            tr._solo = _SoloEncoder(Path(path) / tr.manifest.encoder.file, optimization,
                                    tr.manifest.files.get(tr.manifest.encoder.file))
        return tr

    @property
    def frame_seconds(self) -> float:
        """Seconds of audio per encoder position."""
        return self.time_reduction * self.features.hop_length / self.features.sample_rate

    @property
    def samples_per_position(self) -> int:
        """Samples of audio per encoder position: long recordings are cut on multiples of it."""
        return self.time_reduction * self.features.hop_length

    def step_limit(self, seconds: float) -> int:
        """Most tokens (end token included) a piece of `seconds` of audio may produce: its length at the
        fastest output rate seen in training (`rate_step_limit`), so a long string is not cut and a
        looping model stops soon. Bundles without a recorded rate: DEFAULT_TOKENS_PER_SECOND, and
        never fewer than the bundle's own max_length (what they decoded with before)."""
        n = rate_step_limit(seconds, self.tokens_per_second)
        return n if self.rate_recorded else min(max(n, self.manifest.max_length), MAX_LENGTH_CEILING)

    def memory_length(self, frames: int) -> int:
        """Encoder positions for `frames` log-mel frames: ceil(frames / time_reduction)."""
        return -(-frames // self.time_reduction)

    # --- input ---------------------------------------------------------------------------

    def samples(self, source: SpeechInput, index: int = 0) -> np.ndarray:
        """Mono float32 samples at the bundle's rate for one input; InputError naming it when unusable."""
        rate = self.features.sample_rate
        if not isinstance(source, np.ndarray):
            return load_audio(source, rate, LONGEST_SECONDS)[0]
        name = f"array input {index + 1}"
        if source.ndim != 1:
            raise InputError(f"{name} has shape {source.shape}: pass mono samples as a 1-D array (average the "
                             "channels), or the file itself")
        if not np.issubdtype(source.dtype, np.floating):
            raise InputError(f"{name} has dtype {source.dtype}: pass float samples in [-1, 1] at {rate} Hz "
                             "(divide int16 samples by 32768)")
        if source.size == 0:
            raise InputError(f"{name} has no samples: pass at least {self.features.win_ms:g} ms of audio")
        if source.size / rate > LONGEST_SECONDS:
            raise InputError(f"{name} is {source.size / rate:.1f} s long at {rate} Hz, more than the limit of "
                             f"{LONGEST_SECONDS:g} s: cut it into shorter pieces (e.g. at pauses)")
        x = np.asarray(source, dtype=np.float32)
        if not np.isfinite(x).all():
            raise InputError(f"{name} contains NaN or infinite samples: pass finite samples in [-1, 1]")
        peak = float(np.max(np.abs(x)))
        return np.ascontiguousarray(x / np.float32(peak) if peak > 1.0 else x)

    def encode_features(self, features: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        """Encoder outputs by name for frames [B, T, n_mels] and their lengths [B].

        An encoder that couples a batch (`encoder_couples_batch`) encodes each recording alone, over
        its own frames, and the outputs are padded to the batch's longest (memory with zeros, the
        memory mask with False): a transcript then never depends on the other recordings of its
        batch. Batching buys a recurrent encoder little here (measured: 2.09 s for 200 recordings
        in batches of 8 against 2.23 s one by one); the decoder still runs the batch together."""
        if self.encoder_couples_batch and features.shape[0] > 1:
            return self._encode_one_by_one(features, lengths)
        feeds = {FEATURES: np.ascontiguousarray(features, dtype=np.float32),
                 FEATURE_LENGTHS: np.asarray(lengths, dtype=np.int64)}
        missing = [n for n in self._enc_inputs if n not in feeds]
        if missing:
            raise EdgeS2SError(f"encoder inputs {missing} are not speech inputs: this bundle needs a newer runtime")
        solo = self._solo.session() if self._solo is not None and features.shape[0] == 1 else None
        session = solo or self.bundle.encoder
        with graph_errors("encoding audio"):
            outs = session.run(self._enc_outputs, {n: feeds[n] for n in self._enc_inputs})
        return dict(zip(self._enc_outputs, outs))

    def _encode_one_by_one(self, features: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
        parts = [self.encode_features(features[i : i + 1, : max(1, int(n))], lengths[i : i + 1])
                 for i, n in enumerate(lengths)]
        out = {}
        for name in self._enc_outputs:
            arrays = [p[name] for p in parts]
            if arrays[0].ndim >= 2 and any(a.shape[1] != arrays[0].shape[1] for a in arrays):
                width = max(a.shape[1] for a in arrays)
                arrays = [np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2)) for a in arrays]
            out[name] = np.concatenate(arrays, axis=0)
        return out

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

    def log_mel(self, source: SpeechInput, index: int = 0) -> np.ndarray:
        """Log-mel frames [T, n_mels] of a whole recording, as the model's recipe computes them (what the
        attention picture draws; a long recording's pieces are cut from the same samples)."""
        return log_mel(self.samples(source, index), self.features)

    def _prepare(self, source: SpeechInput, index: int) -> _Prepared:
        """Read one input and cut it into the pieces the encoder sees (none when it is silence only)."""
        x = self.samples(source, index)
        rate = self.features.sample_rate
        seconds = x.size / rate
        if is_silence(x, rate):
            return _Prepared([], seconds, x.size)
        if seconds <= self.split_seconds:
            feats = log_mel(x, self.features)
            if feats.shape[0] == 0:
                raise InputError(f"{_name(source, index)} is {1000 * seconds:.0f} ms long, shorter than one "
                                 f"{self.features.win_ms:g} ms frame: record at least a second of speech")
            return _Prepared([(0, x.size, feats)], seconds, x.size)
        bounds = split_on_silence(x, rate, self.split_seconds, align=self.samples_per_position)
        for s, e in bounds:
            if e - s > self.max_seconds * rate:
                raise InputError(
                    f"{_name(source, index)} is {seconds:.1f} s long, more than the model's limit of "
                    f"{self.max_seconds:g} s, and has no pause of {SPLIT_GAP_MS / 1000:g} s or more to split it at "
                    f"between {s / rate:.1f} s and {s / rate + self.max_seconds:.1f} s: cut it into recordings "
                    f"shorter than {self.max_seconds:g} s")
        pieces = []
        for s, e in bounds:
            if is_silence(x[s:e], rate):
                continue
            feats = log_mel(x[s:e], self.features)
            if feats.shape[0]:
                pieces.append((s, e, feats))
        return _Prepared(pieces, seconds, x.size, split=len(bounds))

    # --- the API -----------------------------------------------------------------------------

    def transcribe(self, inputs: list[SpeechInput], search: SearchConfig = Greedy(), max_length: int | None = None,
                   min_length: int = 0, batch_size: int = 8, errors: str = "raise",
                   callback: Callable[[TokenEvent], bool | None] | None = None,
                   timings: Timings | None = None, workers: int = 0,
                   on_batch: Callable[[int, list[Transcript]], None] | None = None) -> list[Transcript]:
        """Transcribe every recording (paths, file bytes, or float samples at the bundle's rate); one
        Transcript per input, in input order.

        max_length: most tokens (end token included) of every piece; None = each piece's own
        `step_limit(seconds)`. A transcript that stopped at its limit carries `warning`.
        errors="raise": an unusable input raises InputError naming it (nothing is transcribed);
        errors="keep": its Transcript has `error` set and no hypotheses, the others are still done.
        workers: threads that read and turn the next batch's recordings into features while this
        batch decodes (0 = as many as the sessions have threads, at most 4; 1 = no overlap).
        on_batch(start, transcripts) is called after each batch (print as they come).
        """
        if errors not in ERRORS:
            raise InputError(f"errors must be 'raise' or 'keep', got {errors!r}")
        int_option(batch_size, "batch_size", 1)
        workers = int_option(workers, "workers", 0) or min(4, thread_policy()["intra_op_threads"])
        if not isinstance(inputs, (list, tuple)):
            raise InputError("transcribe() takes a list of recordings (paths, bytes or 1-D float arrays): "
                             "wrap a single recording in a list")
        if not inputs:
            raise InputError("no recordings given: pass at least one")
        self._check_call(search, callback, max_length, min_length)
        results: list[Transcript | None] = [None] * len(inputs)
        starts = list(range(0, len(inputs), batch_size))
        # one recording has nothing to overlap with: no pool to start and stop
        pool = (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edge-s2s-audio")
                if workers > 1 and len(inputs) > 1 else None)

        def prepare(i: int) -> _Prepared | InputError:
            try:
                return self._prepare(inputs[i], i)
            except InputError as e:
                return e

        def submit(start: int) -> list:
            idx = range(start, min(start + batch_size, len(inputs)))
            return [prepare(i) for i in idx] if pool is None else [pool.submit(prepare, i) for i in idx]

        try:
            pending = submit(starts[0])
            for k, start in enumerate(starts):
                ready = [f.result() if pool is not None else f for f in pending]
                if k + 1 < len(starts):  # the next batch is read while this one decodes
                    pending = submit(starts[k + 1])
                self._transcribe_batch(inputs, start, ready, results, errors, search, max_length, min_length,
                                       callback, timings, batch_size)
                if on_batch is not None:
                    on_batch(start, results[start : start + len(ready)])
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]

    def _transcribe_batch(self, inputs: list[SpeechInput], start: int, ready: list, results: list, errors: str,
                          search, max_length, min_length, callback, timings, batch_size: int) -> None:
        """Decode one batch of prepared recordings (their pieces, batch_size rows at a time)."""
        prepared: dict[int, _Prepared] = {}
        for i, prep in enumerate(ready, start):
            if isinstance(prep, InputError):
                if errors == "raise":
                    raise prep
                msg, name = str(prep), _name(inputs[i], i)
                results[i] = Transcript([], error=msg if name in msg else f"{name}: {msg}")
            elif prep.pieces:
                prepared[i] = prep
            else:
                results[i] = self._silent(prep.seconds)
        rows = [(i, p) for i, prep in prepared.items() for p in range(len(prep.pieces))]
        rate = self.features.sample_rate
        limits = {(i, p): max(min_length, max_length if max_length is not None else
                              self.step_limit((prepared[i].pieces[p][1] - prepared[i].pieces[p][0]) / rate))
                  for i, p in rows}
        decoded: dict[tuple[int, int], _Decoded] = {}
        for r0 in range(0, len(rows), batch_size):  # a long recording's pieces may need several batches
            chunk = rows[r0: r0 + batch_size]
            frames = [prepared[i].pieces[p][2] for i, p in chunk]
            for key, res in zip(chunk, self._decode_chunk(frames, [i for i, _ in chunk], search,
                                                          [limits[k] for k in chunk], min_length, callback,
                                                          timings)):
                decoded[key] = res
        for i, prep in prepared.items():
            results[i] = self._assemble(prep, [decoded[(i, p)] for p in range(len(prep.pieces))])

    def _silent(self, seconds: float) -> Transcript:
        empty = Hypothesis(ids=[], tokens=[], text="", score=0.0, log_prob=0.0, attention=np.zeros((0, 0), np.float32))
        return Transcript([empty], note=SILENCE_NOTE, duration=seconds, frame_seconds=self.frame_seconds)

    def _decode_chunk(self, frames: list[np.ndarray], index: list[int], search: SearchConfig, limits: list[int],
                      min_length: int, callback, timings: Timings | None) -> list[_Decoded]:
        """Pad frames into one batch and decode it with its largest step limit; `index` maps its rows to
        input indices for `callback`.

        A row that did not end within its own, smaller limit is decoded again alone with it (unless a
        callback watches the tokens: it saw them once), so a row's result is what it gets alone:
        greedy and beam are the same up to a step whatever comes after it, and a hypothesis that
        ended within the row's limit is exactly what the shorter decode returns.
        """
        lengths = np.array([f.shape[0] for f in frames], dtype=np.int64)
        batch = np.zeros((len(frames), int(lengths.max()), self.features.n_mels), np.float32)
        for b, f in enumerate(frames):
            batch[b, : f.shape[0]] = f
        raws = self.decode_features(batch, lengths, search, max(limits), min_length,
                                    _remap_callback(callback, index), timings)
        n_best = search.n_best if isinstance(search, Beam) else 1
        out = []
        for b, (f, r, limit) in enumerate(zip(frames, raws, limits)):
            within = len(r) >= n_best and all(h.finished and len(h.ids) < limit for h in r)
            if limit < max(limits) and not within and callback is None:
                r = self.decode_features(f[None], lengths[b: b + 1], search, limit, min_length, None, timings)[0]
            best = r[0] if r else None
            cut = best is not None and not best.finished and len(best.ids) >= limit
            out.append(_Decoded(self._result(r, self.memory_length(f.shape[0])), limit, cut))
        return out

    def _assemble(self, prep: _Prepared, decoded: list[_Decoded]) -> Transcript:
        """One input's Transcript from its pieces' Results (a whole recording is its only piece)."""
        fs = self.frame_seconds
        parts = [d.result for d in decoded]
        limits = [d.limit for d in decoded]
        warning = _cut_warning(prep, decoded, self.features.sample_rate)
        if not prep.split:
            return Transcript(parts[0].hypotheses, duration=prep.seconds, frame_seconds=fs, step_limits=limits,
                              warning=warning)
        rate, spp = self.features.sample_rate, self.samples_per_position
        best = [r.hypotheses[0] for r in parts]
        L = self.memory_length(self.features.n_frames(prep.n_samples))
        att = np.zeros((sum(len(h.ids) for h in best), L), np.float32)
        row = 0
        for (s, _, _), h in zip(prep.pieces, best):
            if h.attention is not None and h.attention.size:
                off = s // spp  # cuts fall on multiples of spp: the piece's positions shift exactly
                a = h.attention[:, : max(0, L - off)]
                att[row: row + a.shape[0], off: off + a.shape[1]] = a
            row += len(h.ids)
        joined = Hypothesis(ids=[i for h in best for i in h.ids], tokens=[t for h in best for t in h.tokens],
                            text=" ".join(h.text.strip() for h in best if h.text.strip()),
                            score=float(sum(h.score for h in best)),
                            log_prob=float(sum(h.log_prob for h in best)),
                            token_log_probs=[p for h in best for p in h.token_log_probs], attention=att)
        note = (f"{prep.seconds:.1f} s is longer than the model's {self.split_seconds:g} s pieces: split at pauses "
                f"into {prep.split} pieces")
        return Transcript([joined], note=note, duration=prep.seconds, frame_seconds=fs,
                          pieces=[(round(s / rate, 4), round(e / rate, 4)) for s, e, _ in prep.pieces],
                          step_limits=limits, warning=warning)

    def _result(self, raws: list[RawHypothesis], src_len: int) -> Result:
        res = super()._result(raws, src_len)
        for h in res.hypotheses:
            h.text = join_units(h.tokens, self.unit)
        return res


@dataclass
class _Prepared:
    """One input ready for the encoder: (start sample, end sample, log-mel frames) of each piece with sound
    (none: silence only), its length, and how many pieces it was cut into (0: not cut)."""

    pieces: list[tuple[int, int, np.ndarray]]
    seconds: float
    n_samples: int
    split: int = 0


class _SoloEncoder:
    """A one-thread twin of the encoder session, made on first use, for one recording at a time.

    The thread policy's intra-op threads pay off for batches, but a recurrent encoder on ONE
    recording is a chain of small LSTM steps, where waking a second thread costs more than it
    saves: measured on 2 cores with the shipped model (bench/bench_threads.py), one recording took
    6.3 ms with the policy's 2 threads and 4.3 ms with 1, while a batch of 8 ran 1.2x faster with 2.
    So `Transcriber.load` (threads=0, CPU) decodes with a one-thread step session and encodes single
    recordings here, batches on the policy's session."""

    def __init__(self, path: Path, optimization: str, sha256: str | None):
        self._args = (path, optimization, sha256)
        self._session = None
        self._lock = threading.Lock()

    def session(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    path, optimization, sha = self._args
                    self._session = create_session(path, "cpu", 1, optimization, sha)
        return self._session


@dataclass
class _Decoded:
    """One decoded piece: its Result, the step limit it had, and whether its best hypothesis stopped
    there before the end token."""

    result: Result
    limit: int
    cut: bool


def _cut_warning(prep: _Prepared, decoded: list[_Decoded], rate: int) -> str | None:
    """One line naming where a step limit cut the text (None when every piece ended)."""
    cut = [(k, d.limit) for k, d in enumerate(decoded) if d.cut]
    if not cut:
        return None
    advice = "the end may be missing: raise max_length (--max-length) to let it finish"
    if not prep.split:
        return f"stopped at the step limit of {cut[0][1]} tokens before the model ended the transcript: {advice}"
    where = ", ".join(f"{prep.pieces[k][0] / rate:.1f}-{prep.pieces[k][1] / rate:.1f} s ({limit} tokens)"
                      for k, limit in cut)
    return (f"{len(cut)} of {len(decoded)} pieces stopped at their step limit before the model ended them "
            f"({where}): {advice}")


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
        return f"array input {index + 1}"
    return describe(source, None if isinstance(source, (str, os.PathLike)) else index)
