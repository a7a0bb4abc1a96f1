"""Any recording a user has -> mono float32 samples at the model's rate, identically in training and the runtime.

Files are decoded by libsndfile (through `soundfile`): WAV (8-bit unsigned, 16/24/32-bit
integer, 32/64-bit float), FLAC, OGG Vorbis/Opus, AIFF, and MP3 where the bundled
libsndfile has it. Every integer format comes back scaled to [-1, 1) by libsndfile, so
an 8-bit and a 24-bit copy of the same sound give the same samples (up to quantisation).
Channels are averaged into one; the rate is converted with the SoX resampler (`soxr`,
"HQ" quality, deterministic). Float files may hold values beyond +-1 (headroom): such a
signal is scaled down by its peak rather than clipped, so its shape is kept.

Whatever goes wrong with one input is one `InputError` line that names the input and the
fix: missing, empty, not audio, undecodable, zero samples, NaN/inf samples, too long.

`is_silence` and `trim_silence` are the energy tests the transcriber (silence-only input)
and the training data builders (trimming recordings before joining them) share.

Numpy + soundfile + soxr only (no torch), like the rest of the runtime.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

AudioInput = str | os.PathLike | bytes | bytearray | memoryview

# Lower-case suffixes a directory is expanded to by callers that take folders.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".mp3")
_SUPPORTED = "WAV, FLAC, OGG, AIFF, MP3"
_CONVERT = "convert it to WAV (e.g. ffmpeg -i IN -ac 1 -ar 16000 OUT.wav)"

# Silence: the loudest frame quieter than this is "silence only". FSDD's quietest human
# recording peaks at -48 dBFS (20 ms frames), 16-bit dither sits near -90 dBFS and a quiet
# room through a laptop microphone around -70..-55 dBFS.
SILENCE_DB = -60.0
_FLOOR = 1e-20  # energy floor for the dB conversion (-200 dB), so digital silence stays finite


@dataclass(frozen=True)
class AudioInfo:
    """What the file was before conversion (for messages, JSON output and checks)."""

    name: str  # the path, or "bytes input"
    format: str  # libsndfile's container name: "WAV", "FLAC", "OGG", ...
    subtype: str  # the sample encoding: "PCM_16", "PCM_U8", "PCM_24", "FLOAT", "VORBIS", ...
    sample_rate: int  # the file's rate (Hz)
    channels: int
    frames: int  # samples per channel in the file
    rate: int  # the rate of the returned samples (Hz)
    rescaled: bool = False  # a float file peaked above 1.0 and was scaled down by its peak

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def describe(source: AudioInput, index: int | None = None) -> str:
    """A short name for one input in messages: the path itself, else "bytes input <n>", counting from 1
    (`index` is the 0-based position)."""
    if isinstance(source, (str, os.PathLike)):
        p = os.fspath(source)
        return p.decode(errors="replace") if isinstance(p, bytes) else p
    suffix = "" if index is None else f" {index + 1}"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"bytes input{suffix}"
    return f"{type(source).__name__} input{suffix}"


def _one_line(e: BaseException, limit: int = 160) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- loading ----------------------------------------------------------------------------


def load_audio(source: AudioInput, target_rate: int, max_seconds: float | None = None) -> tuple[np.ndarray, AudioInfo]:
    """Decode `source` to mono float32 samples in [-1, 1] at `target_rate` Hz.

    The length is round(frames * target_rate / file_rate) (soxr's rounding). `max_seconds`
    is checked against the file header before decoding, so a very long file costs nothing.
    """
    if not isinstance(target_rate, (int, np.integer)) or isinstance(target_rate, bool) or target_rate < 1:
        raise ValueError(f"target_rate must be a positive integer (Hz), got {target_rate!r}")
    name = describe(source)
    if isinstance(source, (str, os.PathLike)):
        data = _read_file(source, name)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise InputError(f"{name} is empty (0 bytes): pass the encoded contents of an audio file")
    else:
        raise InputError(
            f"{name}: cannot read audio from a {type(source).__module__}.{type(source).__qualname__}: "
            "pass a file path or the file's bytes"
        )
    return _decode(data, name, int(target_rate), max_seconds)


def _read_file(source: str | os.PathLike, name: str) -> bytes:
    path = Path(os.fsdecode(source))
    try:
        if path.is_dir():
            raise InputError(f"{name} is a directory, not an audio file: pass the audio files in it")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file: check the path (relative paths start at {os.getcwd()})") from None
    except PermissionError:
        raise InputError(f"{name} cannot be read (permission denied): fix its permissions or copy it") from None
    except IsADirectoryError:
        raise InputError(f"{name} is a directory, not an audio file: pass the audio files in it") from None
    except OSError as e:
        raise InputError(f"{name} cannot be read ({_one_line(e)}): check the file and the disk") from None
    if not data:
        raise InputError(f"{name} is empty (0 bytes): the file was not written completely; record or copy it again")
    return data


def _decode(data: bytes, name: str, target_rate: int, max_seconds: float | None) -> tuple[np.ndarray, AudioInfo]:
    import soundfile as sf

    try:
        f = sf.SoundFile(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - libsndfile could not recognise or parse the header
        raise InputError(_unreadable_message(data, name)) from None
    with f:
        rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
        fmt, subtype = str(f.format), str(f.subtype)
        if rate < 1:
            raise InputError(f"{name} declares a sample rate of {rate} Hz: the header is corrupt, {_CONVERT}")
        if max_seconds is not None and frames / rate > max_seconds:
            raise InputError(
                f"{name} is {frames / rate:.1f} s long, more than the limit of {max_seconds:g} s: "
                "cut it into shorter pieces (e.g. at pauses)"
            )
        try:
            x = f.read(dtype="float32", always_2d=True)
        except Exception as e:  # noqa: BLE001 - any decoder failure is a property of the file
            raise InputError(f"{name} could not be decoded as {fmt}/{subtype} ({_one_line(e)}): "
                             f"the file is truncated or corrupt, {_CONVERT}") from None
    if x.shape[0] == 0:
        raise InputError(f"{name} has no audio samples (a {fmt} header with 0 frames): record or export it again")
    if not np.isfinite(x).all():
        raise InputError(f"{name} contains NaN or infinite samples (a broken float {fmt}): "
                         "re-export it as 16-bit PCM WAV")
    mono = x.mean(axis=1, dtype=np.float32) if channels > 1 else x[:, 0]
    peak = float(np.max(np.abs(mono)))
    rescaled = peak > 1.0
    if rescaled:
        mono = mono / np.float32(peak)
    if rate != target_rate:
        mono = resample(mono, rate, target_rate)
    info = AudioInfo(name=name, format=fmt, subtype=subtype, sample_rate=rate, channels=channels,
                     frames=int(x.shape[0]), rate=target_rate, rescaled=rescaled)
    return np.ascontiguousarray(mono, dtype=np.float32), info


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 `samples` from `rate` to `target_rate` with soxr HQ, clipped back to [-1, 1].

    The clip only catches the resampler's small overshoot (Gibbs ringing) on near full-scale input.
    """
    import soxr

    if rate == target_rate:
        return np.asarray(samples, dtype=np.float32)
    y = soxr.resample(np.ascontiguousarray(samples, dtype=np.float32), rate, target_rate, quality="HQ")
    return np.clip(y, -1.0, 1.0).astype(np.float32, copy=False)


# Container signatures, so a message can say what a file is instead of "not recognised".
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF8", "a GIF image"),
    (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"\x1aE\xdf\xa3", "a Matroska/WebM media file"),
    (0, b"0&\xb2u", "a Windows Media (ASF/WMA) file"),
    (4, b"ftyp", "an MP4/M4A media file (AAC or ALAC audio is not read)"),
)
_AUDIO_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"RIFF", "WAV"),
    (0, b"RIFX", "WAV"),
    (0, b"RF64", "WAV"),
    (0, b"fLaC", "FLAC"),
    (0, b"OggS", "OGG"),
    (0, b"FORM", "AIFF"),
)


def _unreadable_message(data: bytes, name: str) -> str:
    head = data[:1024]
    for off, sig, fmt in _AUDIO_SIGNATURES:
        if head[off:off + len(sig)] == sig:
            return f"{name} starts like a {fmt} file but its header is corrupt or truncated: {_CONVERT}"
    for off, sig, kind in _SIGNATURES:
        if head[off:off + len(sig)] == sig:
            return f"{name} is {kind}, not audio edge-s2s reads ({_SUPPORTED}): {_CONVERT}"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n\f" for c in text.lstrip("\ufeff")):
        return f"{name} is not audio (it is a text file): pass a WAV, FLAC or OGG recording"
    return f"{name} is not audio (no supported format recognised: {_SUPPORTED}): check the file or {_CONVERT}"


# --- silence ----------------------------------------------------------------------------


def frame_levels_db(samples: np.ndarray, rate: int, frame_ms: float = 20.0) -> np.ndarray:
    """Level of each non-overlapping frame in dBFS: 10 log10(mean square), each frame's mean removed.

    0 dBFS is a full-scale square wave (a full-scale sine is -3 dBFS). The frame mean is
    removed because a cheap microphone's DC offset is not sound. A last partial frame counts
    as a frame; input shorter than one frame is one frame.
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return np.zeros(0, dtype=np.float64)
    n = max(1, int(round(rate * frame_ms / 1000.0)))
    pad = -x.size % n
    frames = np.pad(x, (0, pad)).reshape(-1, n)
    counts = np.full(frames.shape[0], n, dtype=np.float64)
    counts[-1] = n - pad  # the partial last frame averages over its real samples only
    means = frames.sum(axis=1) / counts
    centred = frames - means[:, None]
    if pad:
        centred[-1, n - pad:] = 0.0
    return 10.0 * np.log10((centred * centred).sum(axis=1) / counts + _FLOOR)


def is_silence(samples: np.ndarray, rate: int, threshold_db: float = SILENCE_DB, frame_ms: float = 20.0) -> bool:
    """True when no 20 ms frame reaches `threshold_db` dBFS (default -60): nothing to transcribe.

    A peak-frame test, not an average, so one short word in a long quiet recording still counts
    as sound. Empty input is silence.
    """
    levels = frame_levels_db(samples, rate, frame_ms)
    return levels.size == 0 or float(levels.max()) < threshold_db


def sound_bounds(samples: np.ndarray, rate: int, top_db: float = 30.0, frame_ms: float = 10.0,
                 margin_ms: float = 10.0) -> tuple[int, int]:
    """[start, end) sample range from the first to the last frame within `top_db` dB of the loudest.

    Relative, not absolute: a quiet speaker is trimmed as well as a loud one. Frames are
    `frame_ms` long; `margin_ms` of audio is kept either side so soft onsets are not cut.
    Input with no frame above the floor (digital silence) is returned whole.
    """
    x = np.asarray(samples).reshape(-1)
    levels = frame_levels_db(x, rate, frame_ms)
    if levels.size == 0:
        return 0, 0
    n = max(1, int(round(rate * frame_ms / 1000.0)))
    loud = np.flatnonzero(levels >= levels.max() - top_db)
    margin = int(round(rate * margin_ms / 1000.0))
    start = max(0, int(loud[0]) * n - margin)
    end = min(x.size, (int(loud[-1]) + 1) * n + margin)
    return start, end


def trim_silence(samples: np.ndarray, rate: int, top_db: float = 30.0, frame_ms: float = 10.0,
                 margin_ms: float = 10.0) -> np.ndarray:
    """`samples` without leading and trailing silence (see `sound_bounds`); a view, not a copy."""
    start, end = sound_bounds(samples, rate, top_db, frame_ms, margin_ms)
    return np.asarray(samples).reshape(-1)[start:end]



# --- splitting long recordings -----------------------------------------------------------

SPLIT_GAP_MS = 150.0  # the shortest pause a long recording is cut at: a digit string's pauses are 200 ms or more
FLOOR_MARGIN_DB = 10.0  # `pauses`: a frame this close to the recording's noise floor is a pause ...
MIN_PAUSE_DEPTH_DB = 12.0  # ... if it is also this far below the loudest frame


def pauses(samples: np.ndarray, rate: int, min_gap_ms: float = SPLIT_GAP_MS, top_db: float = 35.0,
           frame_ms: float = 10.0, align: int = 1) -> list[tuple[int, int]]:
    """(cut, length) in samples of every pause in `samples`, in time order: where it may be cut (the
    pause's middle) and how long the pause is.

    A pause is at least `min_gap_ms` of `frame_ms` frames that are all quieter than `top_db`
    below the loudest frame (or below SILENCE_DB, whichever is higher), so a quiet speaker's
    pauses count like a loud one's; or, in a noisy recording, no louder than FLOOR_MARGIN_DB
    above its noise floor (the 10th percentile of frame levels) while still at least
    MIN_PAUSE_DEPTH_DB below the loudest frame, so pauses full of room noise count too
    (issue 17: a 30-digit string with -50 dBFS noise between the digits had no "pause"). Cuts are
    rounded to a multiple of `align` samples (the transcriber passes the samples per encoder
    position, so a piece's times shift exactly) and dropped when rounding would leave the pause;
    0 and len(samples) are never cuts.
    """
    x = np.asarray(samples).reshape(-1)
    levels = frame_levels_db(x, rate, frame_ms)
    if levels.size == 0:
        return []
    n = max(1, int(round(rate * frame_ms / 1000.0)))
    peak, floor = float(levels.max()), float(np.percentile(levels, 10))
    threshold = max(peak - top_db, min(floor + FLOOR_MARGIN_DB, peak - MIN_PAUSE_DEPTH_DB), SILENCE_DB)
    quiet = levels < threshold
    edges = np.flatnonzero(np.diff(np.concatenate(([0], quiet.astype(np.int8), [0]))))
    need = max(1, int(np.ceil(min_gap_ms / frame_ms)))
    align = max(1, int(align))
    out = []
    for a, b in zip(edges[::2], edges[1::2]):  # quiet frames [a, b)
        if b - a < need:
            continue
        lo, hi = int(a) * n, min(int(b) * n, x.size)
        c = int(round((lo + hi) / 2 / align)) * align
        if lo <= c <= hi and 0 < c < x.size:
            out.append((c, hi - lo))
    return out


def pause_cuts(samples: np.ndarray, rate: int, min_gap_ms: float = SPLIT_GAP_MS, top_db: float = 35.0,
               frame_ms: float = 10.0, align: int = 1) -> np.ndarray:
    """Sample positions where `samples` may be cut (the middle of every pause, see `pauses`), ascending."""
    return np.asarray([c for c, _ in pauses(samples, rate, min_gap_ms, top_db, frame_ms, align)], dtype=np.int64)


def split_on_silence(samples: np.ndarray, rate: int, max_seconds: float, min_gap_ms: float = SPLIT_GAP_MS,
                     top_db: float = 35.0, align: int = 1) -> list[tuple[int, int]]:
    """[start, end) sample ranges covering `samples` end to end, cut in pauses (`pauses`) until each is at
    most `max_seconds` long.

    A stretch over the limit is cut at its longest pause (the one nearest its middle among equals),
    and each side again while still too long: the cuts fall between sentences or numbers before they
    fall between words, so each piece is a whole utterance where the pauses allow. A stretch with no
    pause left stays longer than `max_seconds`: the caller decides what to do with it (the
    transcriber refuses it, naming the limit). A recording within the limit is one piece.
    """
    x = np.asarray(samples).reshape(-1)
    limit = int(max_seconds * rate)
    if x.size <= limit:
        return [(0, int(x.size))]
    found = pauses(x, rate, min_gap_ms, top_db, align=align)
    # coarse pause length (20 ms steps) so that near-equal pauses are ties broken by balance
    step = max(1, rate // 50)

    def split(lo: int, hi: int) -> list[tuple[int, int]]:
        inside = [(c, g) for c, g in found if lo < c < hi]
        if hi - lo <= limit or not inside:
            return [(lo, hi)]
        mid = (lo + hi) / 2
        cut = max(inside, key=lambda cg: (cg[1] // step, -abs(cg[0] - mid)))[0]
        return split(lo, cut) + split(cut, hi)

    return split(0, int(x.size))
