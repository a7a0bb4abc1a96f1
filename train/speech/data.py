"""Speech training data from real human recordings: spoken digit strings (FSDD) and Tux Paint phrases.

FSDD (../shared/data/fsdd, see its README.md; CC BY-SA 4.0, never committed) holds single
digits, `recordings/{digit}_{speaker}_{take}.wav`, 8 kHz mono. A digit string is built by
joining recordings of ONE speaker: each recording is trimmed of its leading and trailing
silence first (`runtime.audio.trim_silence`: frames more than 30 dB below the recording's
loudest 10 ms frame, keeping 10 ms either side), then joined with random pauses, and a
random lead-in and tail of the same range are added so a model never relies on speech
starting at sample 0. Every pause of one string is of one kind (`DigitUtterance.pause`):

- "floor": white noise at the recordings' own noise floor (the median of their quietest-10%
  frame levels, never above -45 dBFS), so the joins do not mark the word boundaries;
- "zeros": digital silence, exact zeros (what a phone line, a VAD or an editor leaves);
- "noise": white noise at `pause_db` dBFS, drawn uniformly from NOISE_DB_RANGE (-90..-45).

`build_fsdd` draws the kind per TRAINING string from PAUSE_MIX (1/3 each), so a model hears
pauses from digital zero up to a loud hiss, not only the recordings' floor (issue 17: a model
trained on floor-only pauses read the held-out speaker's digits joined by zeros with ~80%
digit error). Validation and test strings keep "floor" pauses, today's recipe, so their
numbers stay comparable; scripts/speech_silence_check.py re-renders them with other pauses
(`utterance_from_row`, `render_digits(..., pause=...)`). The kind and level come from a
generator seeded by the utterance's own seed, so the digit strings themselves (and a
floor-only build) are the same as before pause kinds existed.

Target text: the digits as characters separated by single spaces, "4 1 5 5 0 1 9". A
character decoder then has 11 symbols ("0".."9" and space), and because every spoken word
is one written word, jiwer's WER on these transcripts is the digit error rate (without
spaces a whole number would be one "word" and WER would be the string error rate).

Kinds: "random" (2-10 uniform digits), "phone" (7 or 10 digits, North-American style:
the exchange and area code never start with 0 or 1) and "pin" (4 digits).

Splits: `speaker_split` holds out whole speakers for the test set; the default is "theo"
(US English, neutral accent) because the training set keeps "jackson", the other
US-neutral speaker, so the test measures a new voice rather than a new accent, with four
speakers left to train on. `build_fsdd` also keeps FSDD's official test takes (0-4) of the
training speakers out of the training strings and builds the validation strings from them.

Tux Paint (Debian `tuxpaint-stamps-default`, GPL-2+): `<stem>_desc_<ll>.ogg` is a human
recording of the stamp's description in language <ll>; the transcript is the
`<ll>.utf8=` line of `<stem>.txt` beside it. `Phrase.text` is that line tidied
(whitespace, typographic quotes); `Phrase.transcript` is what a character model is
trained on: lower case, punctuation removed except apostrophes and hyphens inside words,
digits kept as written. Identical sentences stay in one split.

Everything random derives from the seed: the same seed gives byte-identical wavs and
manifests. The manifest (JSONL, one utterance a line: audio path, transcript, speaker,
duration, sources, and the recipe: pauses_ms, seed, pause, pause_db) is written last and
atomically, so an interrupted build never leaves a manifest that names missing or
half-written audio. `build_fsdd` also writes `recipe.json` (seed, sizes, held-out speakers,
rate, each split's pause mix and the noise range) beside the splits.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ...runtime.errors import EdgeS2SError
from ...runtime.media.audio import frame_levels_db, load_audio, trim_silence
from ..caption.tuxpaint import APT_INSTALL, STAMPS_DIR
from ..core.checkpoint import atomic_write_bytes
from ..core.data_roots import shared_data, where_hint
from ..core.splits import FRACTIONS, assign_splits

FSDD_ROOT = shared_data("fsdd")
FSDD_HINT = ("get the Free Spoken Digit Dataset (https://github.com/Jakobovski/free-spoken-digit-dataset) "
             "and pass the folder that holds recordings/")
FSDD_RATE = 8000
TEST_SPEAKERS = ("theo",)
VAL_TAKES = range(0, 5)  # FSDD's official test takes, kept out of the training strings
KINDS: dict[str, float] = {"random": 0.5, "phone": 0.3, "pin": 0.2}
PHONE_LENGTHS = (7, 10)
PIN_LENGTH = 4
MANIFEST = "manifest.jsonl"
MAX_NOISE_DB = -45.0
PAUSE_KINDS = ("floor", "zeros", "noise")
PAUSE_MIX: dict[str, float] = {"zeros": 1 / 3, "floor": 1 / 3, "noise": 1 / 3}  # training strings' pauses
NOISE_DB_RANGE = (-90.0, -45.0)  # "noise" pauses: level drawn uniformly in dBFS
RECIPE = "recipe.json"

_FSDD_NAME = re.compile(r"^([0-9])_([A-Za-z0-9-]+)_([0-9]+)\.wav$")


class SpeechDataError(EdgeS2SError, ValueError):
    """A speech data source is missing or unusable (the message names the fix)."""


# ---------------------------------------------------------------- FSDD


@dataclass(frozen=True)
class Recording:
    path: Path
    speaker: str
    digit: str
    take: int


@dataclass
class FsddIndex:
    """FSDD recordings by speaker, then digit ("0".."9"), each list sorted by take."""

    root: Path
    recordings: dict[str, dict[str, list[Recording]]]
    skipped: list[str] = field(default_factory=list)  # .wav names not of the form digit_speaker_take.wav

    @property
    def speakers(self) -> list[str]:
        return sorted(self.recordings)

    def count(self, speaker: str) -> int:
        return sum(len(v) for v in self.recordings.get(speaker, {}).values())

    def select(self, speakers: Iterable[str] | None = None, takes: Iterable[int] | None = None,
               exclude_takes: Iterable[int] | None = None) -> FsddIndex:
        """A sub-index: only these speakers, only / all but these takes."""
        keep = set(self.speakers if speakers is None else speakers)
        unknown = sorted(keep - set(self.recordings))
        if unknown:
            raise SpeechDataError(f"FSDD has no speaker {', '.join(unknown)} in {self.root}: "
                                  f"choose from {', '.join(self.speakers)}")
        take_in = None if takes is None else set(takes)
        take_out = set() if exclude_takes is None else set(exclude_takes)
        out: dict[str, dict[str, list[Recording]]] = {}
        for s in sorted(keep):
            out[s] = {d: [r for r in rs if (take_in is None or r.take in take_in) and r.take not in take_out]
                      for d, rs in self.recordings[s].items()}
        return FsddIndex(self.root, out, list(self.skipped))


def fsdd_index(root: str | Path = FSDD_ROOT) -> FsddIndex:
    """Scan `root/recordings` (or `root` itself when it holds the wavs) into an `FsddIndex`."""
    root = Path(root)
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    if not folder.is_dir():
        raise SpeechDataError(f"{root}: no such folder: {FSDD_HINT} ({where_hint('fsdd', '--fsdd')})")
    recs: dict[str, dict[str, list[Recording]]] = defaultdict(lambda: defaultdict(list))
    skipped = []
    for p in sorted(folder.glob("*.wav")):
        m = _FSDD_NAME.match(p.name)
        if not m:
            skipped.append(p.name)
            continue
        recs[m.group(2)][m.group(1)].append(Recording(p, m.group(2), m.group(1), int(m.group(3))))
    if not recs:
        raise SpeechDataError(f"{folder} holds no digit_speaker_take.wav recordings: {FSDD_HINT}")
    out = {s: {d: sorted(rs, key=lambda r: r.take) for d, rs in sorted(ds.items())} for s, ds in sorted(recs.items())}
    return FsddIndex(root, out, skipped)


def speaker_split(index: FsddIndex, test_speakers: Sequence[str] = TEST_SPEAKERS) -> tuple[FsddIndex, FsddIndex]:
    """(train, test) indexes with whole speakers held out for test (default "theo", see module doc)."""
    test = list(test_speakers)
    if not test:
        raise SpeechDataError("no test speaker given: hold out at least one speaker (e.g. theo)")
    train = [s for s in index.speakers if s not in test]
    if not train:
        raise SpeechDataError(f"every speaker ({', '.join(index.speakers)}) is held out for test: "
                              "leave at least one for training")
    return index.select(train), index.select(test)


@dataclass(frozen=True)
class DigitUtterance:
    """The recipe of one digit string: which recordings, which pauses; `render_digits` makes the audio."""

    id: str
    speaker: str
    kind: str  # "random", "phone" or "pin"
    digits: str  # "4155019"
    sources: tuple[Path, ...]  # one recording per digit, in order
    pauses_ms: tuple[int, ...]  # lead-in, the len(digits) - 1 gaps, tail
    seed: int  # the pause noise
    pause: str = "floor"  # "floor", "zeros" or "noise" (see the module doc)
    pause_db: float | None = None  # with pause "noise": its level in dBFS

    @property
    def transcript(self) -> str:
        """The target text: digits separated by single spaces ("4 1 5 5 0 1 9")."""
        return " ".join(self.digits)


def _kind_lengths(kind: str, min_digits: int, max_digits: int) -> list[int]:
    if kind == "random":
        return list(range(min_digits, max_digits + 1))
    if kind == "phone":
        return [n for n in PHONE_LENGTHS if min_digits <= n <= max_digits]
    if kind == "pin":
        return [PIN_LENGTH] if min_digits <= PIN_LENGTH <= max_digits else []
    raise ValueError(f"unknown digit-string kind {kind!r}: use {', '.join(KINDS)}")


def _draw_digits(kind: str, n: int, rng: np.random.Generator) -> str:
    d = rng.integers(0, 10, size=n)
    if kind == "phone":  # exchange (and area code) start with 2-9
        for i in ((0, 3) if n == 10 else (0,)):
            d[i] = rng.integers(2, 10)
    return "".join(str(int(x)) for x in d)


def _check_pause_mix(mix: dict[str, float]) -> None:
    bad = sorted(set(mix) - set(PAUSE_KINDS))
    if bad or not mix or any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"pause mix {mix!r} must weigh {', '.join(PAUSE_KINDS)} with weights >= 0, not all 0")


def draw_pause(mix: dict[str, float], seed: int) -> tuple[str, float | None]:
    """(pause kind, level in dBFS for "noise") of one utterance, from a generator seeded by its own seed."""
    _check_pause_mix(mix)
    kinds = [k for k in PAUSE_KINDS if mix.get(k, 0) > 0]
    if len(kinds) == 1 and kinds[0] != "noise":
        return kinds[0], None
    prng = np.random.default_rng([seed, 17])
    p = np.array([mix[k] for k in kinds], dtype=np.float64)
    kind = kinds[int(prng.choice(len(kinds), p=p / p.sum()))]
    level = round(float(prng.uniform(*NOISE_DB_RANGE)), 2)
    return kind, (level if kind == "noise" else None)


def digit_strings(index: FsddIndex, speakers: Sequence[str], n: int, rng: np.random.Generator,
                  min_digits: int = 2, max_digits: int = 10, pause_ms: tuple[int, int] = (50, 300),
                  kinds: dict[str, float] | None = None, prefix: str = "",
                  pause_mix: dict[str, float] | None = None) -> list[DigitUtterance]:
    """`n` digit-string recipes, each spoken by one of `speakers` (uniformly), kinds drawn by weight.

    Within one string a digit said twice uses two different takes when the speaker has them.
    `pause_mix` weighs the pause kinds (default: all "floor"); see `draw_pause`.
    """
    mix = {"floor": 1.0} if pause_mix is None else dict(pause_mix)
    _check_pause_mix(mix)
    if not 1 <= min_digits <= max_digits:
        raise ValueError(f"need 1 <= min_digits <= max_digits, got {min_digits}, {max_digits}")
    if not 0 <= pause_ms[0] <= pause_ms[1]:
        raise ValueError(f"pause_ms must be (low, high) with 0 <= low <= high, got {pause_ms}")
    weights = dict(KINDS if kinds is None else kinds)
    lengths = {k: _kind_lengths(k, min_digits, max_digits) for k in weights}
    usable = [k for k, w in weights.items() if w > 0 and lengths[k]]
    if not usable:
        raise ValueError(f"no digit-string kind fits {min_digits}-{max_digits} digits: widen the range")
    p = np.array([weights[k] for k in usable], dtype=np.float64)
    p /= p.sum()
    speakers = list(speakers)
    for s in speakers:
        missing = [d for d in "0123456789" if not index.recordings.get(s, {}).get(d)]
        if missing:
            raise SpeechDataError(f"speaker {s!r} has no recording of digit(s) {', '.join(missing)} in {index.root}: "
                                  "choose speakers with all ten digits")
    out = []
    for i in range(n):
        speaker = speakers[int(rng.integers(len(speakers)))]
        kind = usable[int(rng.choice(len(usable), p=p))]
        length = lengths[kind][int(rng.integers(len(lengths[kind])))]
        digits = _draw_digits(kind, length, rng)
        used: dict[str, set[int]] = defaultdict(set)
        sources = []
        for d in digits:
            takes = index.recordings[speaker][d]
            fresh = [j for j in range(len(takes)) if j not in used[d]] or list(range(len(takes)))
            j = fresh[int(rng.integers(len(fresh)))]
            used[d].add(j)
            sources.append(takes[j].path)
        pauses = tuple(int(x) for x in rng.integers(pause_ms[0], pause_ms[1] + 1, size=length + 1))
        seed = int(rng.integers(2**31))
        pause, pause_db = draw_pause(mix, seed)
        out.append(DigitUtterance(f"{prefix}{speaker}-{kind}-{i:05d}", speaker, kind, digits, tuple(sources), pauses,
                                  seed, pause, pause_db))
    return out


class ClipCache:
    """Trimmed recordings at one rate, read once each (a digit string reuses them often)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._cache: dict[Path, tuple[np.ndarray, float]] = {}

    def get(self, path: Path) -> tuple[np.ndarray, float]:
        """(trimmed samples, noise floor in dBFS) of one recording."""
        if path not in self._cache:
            x, _ = load_audio(path, self.rate)
            floor = float(np.percentile(frame_levels_db(x, self.rate, 10.0), 10))
            self._cache[path] = (np.array(trim_silence(x, self.rate)), floor)
        return self._cache[path]


def pause_level(u: DigitUtterance, parts: Sequence[tuple[np.ndarray, float]]) -> float | None:
    """The pauses' noise level in dBFS (None: digital zeros) given the trimmed recordings and their floors."""
    if u.pause == "zeros":
        return None
    if u.pause == "noise":
        if u.pause_db is None:
            raise ValueError(f"{u.id}: pause \"noise\" needs pause_db (a level in dBFS)")
        return float(u.pause_db)
    if u.pause != "floor":
        raise ValueError(f"{u.id}: unknown pause kind {u.pause!r}: use {', '.join(PAUSE_KINDS)}")
    return min(MAX_NOISE_DB, float(np.median([f for _, f in parts])))


def render_digits(u: DigitUtterance, rate: int = FSDD_RATE, clips: ClipCache | None = None) -> np.ndarray:
    """The audio of one recipe: float32 mono at `rate` (see the module doc for trimming and pauses).

    To hear the same string with other pauses: `render_digits(dataclasses.replace(u, pause="zeros"))`.
    """
    clips = clips if clips is not None and clips.rate == rate else ClipCache(rate)
    parts = [clips.get(p) for p in u.sources]
    noise_db = pause_level(u, parts)
    rng = np.random.default_rng(u.seed)

    def pause(ms: int) -> np.ndarray:
        n = int(round(rate * ms / 1000.0))
        if noise_db is None:
            return np.zeros(n, dtype=np.float32)
        return (rng.standard_normal(n) * 10.0 ** (noise_db / 20.0)).astype(np.float32)

    pieces = [pause(u.pauses_ms[0])]
    for k, (clip, _) in enumerate(parts):
        pieces += [clip, pause(u.pauses_ms[k + 1])]
    return np.clip(np.concatenate(pieces), -1.0, 1.0).astype(np.float32)


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_manifest(path: str | Path, rows: Iterable[dict]) -> Path:
    """JSONL, one utterance a line, written atomically (sorted keys: byte-identical for equal rows)."""
    path = Path(path)
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a manifest, with relative "audio" paths resolved against its folder."""
    path = Path(path)
    if not path.is_file():
        raise SpeechDataError(f"{path}: no such manifest: build the data set first")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row.get("transcript"), str):
                raise KeyError("transcript")
            row["audio"] = str(path.parent / row["audio"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SpeechDataError(f"{path}:{n} is not a manifest row with \"audio\" and \"transcript\": "
                                  "rebuild the data set") from None
        rows.append(row)
    return rows


def write_digit_set(out_dir: str | Path, utterances: Sequence[DigitUtterance], rate: int = FSDD_RATE) -> Path:
    """Render and write `out_dir/wav/<id>.wav` (16-bit PCM) and `out_dir/manifest.jsonl`; returns the manifest.

    `rate` defaults to FSDD's own 8 kHz: upsampling here would add no information.
    """
    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    clips = ClipCache(rate)
    rows = []
    for u in utterances:
        audio = render_digits(u, rate, clips)
        rel = f"wav/{u.id}.wav"
        (out / rel).write_bytes(_wav_bytes(audio, rate))
        level = pause_level(u, [clips.get(p) for p in u.sources])
        rows.append({"id": u.id, "audio": rel, "transcript": u.transcript, "speaker": u.speaker, "kind": u.kind,
                     "duration": round(audio.size / rate, 4), "sources": [p.name for p in u.sources],
                     "pauses_ms": list(u.pauses_ms), "seed": u.seed, "pause": u.pause,
                     "pause_db": None if level is None else round(level, 2)})
    return write_manifest(out / MANIFEST, rows)


def isolated_digit_set(index: FsddIndex, speakers: Sequence[str], out_manifest: str | Path,
                       takes: Iterable[int] | None = None, exclude_takes: Iterable[int] | None = None) -> Path:
    """A manifest of the original recordings of `speakers` (all takes, or only / all but these), one digit
    each, as FSDD ships it (untrimmed; absolute audio paths, nothing copied): the isolated digits a user says
    first (issue 17: models trained on strings of 2 or more digits often heard one digit as two). Training
    speakers' takes 5-49 can train, their takes 0-4 (VAL_TAKES) validate; the held-out speaker's all test."""
    rows = []
    for s in speakers:
        for d, recs in index.select([s], takes=takes, exclude_takes=exclude_takes).recordings[s].items():
            for r in recs:
                x, _ = load_audio(r.path, FSDD_RATE)
                rows.append({"id": f"isolated-{s}-{d}-{r.take}", "audio": str(r.path.resolve()), "transcript": d,
                             "speaker": s, "kind": "isolated", "duration": round(x.size / FSDD_RATE, 4)})
    return write_manifest(out_manifest, rows)


def utterance_from_row(row: dict, root: str | Path = FSDD_ROOT) -> DigitUtterance:
    """The recipe of one manifest row of `write_digit_set` (sources looked up in the FSDD folder `root`)."""
    if not isinstance(row.get("pauses_ms"), list) or not isinstance(row.get("seed"), int) or "sources" not in row:
        raise SpeechDataError(f"manifest row {row.get('id', '?')!r} has no digit-string recipe (pauses_ms, seed, "
                              "sources): rebuild the data set with this version")
    root = Path(root)
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    sources = tuple(folder / name for name in row["sources"])
    missing = [p.name for p in sources if not p.is_file()]
    if missing:
        raise SpeechDataError(f"{folder} lacks {', '.join(missing[:3])}: pass the FSDD folder the set was built from")
    pause = row.get("pause", "floor")
    return DigitUtterance(row["id"], row["speaker"], row["kind"], row["transcript"].replace(" ", ""), sources,
                          tuple(int(x) for x in row["pauses_ms"]), int(row["seed"]), pause,
                          row.get("pause_db") if pause == "noise" else None)


def rerender_digit_set(manifest: str | Path, out_dir: str | Path, pause: str, pause_db: float | None = None,
                       root: str | Path = FSDD_ROOT, limit: int = 0) -> Path:
    """The strings of a `write_digit_set` manifest (its first `limit`, 0 = all) again, every pause of kind
    `pause` ("zeros", "floor" or "noise" at `pause_db` dBFS), written as a digit set under `out_dir`."""
    if pause not in PAUSE_KINDS:
        raise ValueError(f"unknown pause kind {pause!r}: use {', '.join(PAUSE_KINDS)}")
    if (pause == "noise") != (pause_db is not None):
        raise ValueError("give pause_db (dBFS) with pause \"noise\" and only then")
    rows = read_manifest(manifest)
    rows = rows[:limit] if limit > 0 else rows
    utts = [replace(utterance_from_row(r, root), pause=pause, pause_db=pause_db) for r in rows]
    return write_digit_set(out_dir, utts)


def build_fsdd(root: str | Path, out_dir: str | Path, n_train: int, n_val: int, n_test: int, seed: int = 13,
               test_speakers: Sequence[str] = TEST_SPEAKERS, rate: int = FSDD_RATE,
               pause_mix: dict[str, float] | None = None, **kw) -> dict[str, Path]:
    """train/val/test digit-string sets under `out_dir` and its `recipe.json`; returns split -> manifest.

    train: training speakers, takes 5-49, pauses drawn from `pause_mix` (default PAUSE_MIX); val:
    training speakers, takes 0-4 (recordings the training strings never use); test: the held-out
    speakers, all takes; val and test pauses are "floor". `kw` goes to `digit_strings`.
    """
    mixes = {"train": dict(PAUSE_MIX if pause_mix is None else pause_mix), "val": {"floor": 1.0},
             "test": {"floor": 1.0}}
    _check_pause_mix(mixes["train"])
    index = fsdd_index(root)
    train_idx, test_idx = speaker_split(index, test_speakers)
    rng = np.random.default_rng(seed)
    plan = {"train": (train_idx.select(exclude_takes=VAL_TAKES), n_train),
            "val": (train_idx.select(takes=VAL_TAKES), n_val),
            "test": (test_idx, n_test)}
    recipe = {"builder": "edge_s2s.train.speech.data.build_fsdd", "seed": seed, "rate": rate,
              "sizes": {k: n for k, (_, n) in plan.items()}, "test_speakers": list(test_speakers),
              "val_takes": list(VAL_TAKES), "pause_mix": mixes, "noise_db_range": list(NOISE_DB_RANGE),
              "floor_max_db": MAX_NOISE_DB, "digit_strings": {k: list(v) if isinstance(v, tuple) else v
                                                              for k, v in sorted(kw.items())}}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(out_dir) / RECIPE, (json.dumps(recipe, indent=1, sort_keys=True) + "\n").encode())
    out = {}
    for split, (idx, n) in plan.items():
        utts = digit_strings(idx, idx.speakers, n, rng, prefix=f"{split}-", pause_mix=mixes[split], **kw)
        out[split] = write_digit_set(Path(out_dir) / split, utts, rate)
    return out


# ---------------------------------------------------------------- Tux Paint


@dataclass(frozen=True)
class Phrase:
    audio: Path  # <stem>_desc_<lang>.ogg
    text: str  # the .txt line as written (whitespace and quotes tidied)
    transcript: str  # normalised target text (see module doc)
    stamp: str  # the stamp's path under the stamps folder, without suffix
    lang: str


_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u201c": '"', "\u201d": '"',
                         "\u201e": '"', "\u00ab": '"', "\u00bb": '"', "\u00a0": " ", "\u202f": " "})
_NOT_WORD = re.compile(r"[^\w'\-]+|_")
_LOOSE_MARKS = re.compile(r"(?<!\w)['\-]+|['\-]+(?!\w)")


def normalise_transcript(text: str) -> str:
    """Lower case, NFC, punctuation dropped except apostrophes and hyphens inside words; single spaces."""
    t = unicodedata.normalize("NFC", text).translate(_QUOTES).lower()
    t = _LOOSE_MARKS.sub(" ", _NOT_WORD.sub(" ", t))
    return " ".join(t.split())


def _tidy(text: str) -> str:
    return " ".join(text.translate(_QUOTES).split())


def _stamps_dir(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise SpeechDataError(f"{root}: no such stamps folder (Tux Paint's recordings are not installed): "
                              f"{APT_INSTALL}")
    return root


def _language_line(txt: Path, lang: str) -> str | None:
    prefix = f"{lang}.utf8="
    for line in txt.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff").splitlines():
        if line.startswith(prefix):
            return line[len(prefix):]
    return None


def tuxpaint_phrases(root: str | Path = STAMPS_DIR, lang: str = "fr") -> list[Phrase]:
    """(recording, transcript) pairs of one language, sorted by path.

    A recording whose .txt is missing or has no (or an empty) `<lang>.utf8=` line is skipped.
    """
    root = _stamps_dir(root)
    out = []
    for ogg in sorted(root.rglob(f"*_desc_{lang}.ogg")):
        txt = ogg.with_name(ogg.name[: -len(f"_desc_{lang}.ogg")] + ".txt")
        line = _language_line(txt, lang) if txt.is_file() else None
        if line is None or not normalise_transcript(line):
            continue
        stamp = txt.relative_to(root).with_suffix("").as_posix()
        out.append(Phrase(ogg, _tidy(line), normalise_transcript(line), stamp, lang))
    if not out:
        have = ", ".join(f"{k} ({v[1]})" for k, v in tuxpaint_languages(root).items() if v[1]) or "none"
        raise SpeechDataError(f"{root} has no {lang!r} recordings with a transcript (languages: {have}): "
                              f"choose one of those, or reinstall: {APT_INSTALL}")
    return out


def tuxpaint_languages(root: str | Path = STAMPS_DIR) -> dict[str, tuple[int, int]]:
    """Language -> (`*_desc_<lang>.ogg` recordings, those whose .txt has that language's line)."""
    root = _stamps_dir(root)
    counts: Counter[str] = Counter()
    usable: Counter[str] = Counter()
    desc = re.compile(r"^(.+)_desc_([a-z]{2,3}(?:_[A-Za-z]{2})?)\.ogg$")
    for ogg in root.rglob("*_desc_*.ogg"):
        m = desc.match(ogg.name)
        if not m:
            continue
        txt = ogg.with_name(m.group(1) + ".txt")
        line = _language_line(txt, m.group(2)) if txt.is_file() else None
        counts[m.group(2)] += 1
        usable[m.group(2)] += line is not None and bool(normalise_transcript(line))
    return {k: (counts[k], usable[k]) for k in sorted(counts)}


def split_phrases(phrases: Sequence[Phrase], seed: int = 13,
                  fractions: dict[str, float] = FRACTIONS) -> dict[str, list[Phrase]]:
    """train/val/test held out by utterance; phrases with the same transcript stay in one split."""
    groups = assign_splits((p.transcript for p in phrases), seed, fractions)
    out: dict[str, list[Phrase]] = {k: [] for k in ("train", "val", "test")}
    for p in phrases:
        out[groups[p.transcript]].append(p)
    return out


def write_phrase_manifest(path: str | Path, phrases: Sequence[Phrase]) -> Path:
    """A manifest of Tux Paint phrases (absolute audio paths: the recordings are not copied)."""
    import soundfile as sf

    rows = [{"audio": str(p.audio.resolve()), "transcript": p.transcript, "text": p.text,
             "speaker": f"tuxpaint-{p.lang}", "stamp": p.stamp, "duration": round(sf.info(str(p.audio)).duration, 4)}
            for p in phrases]
    return write_manifest(path, rows)


def build_tuxpaint(root: str | Path, out_dir: str | Path, lang: str = "fr", seed: int = 13) -> dict[str, Path]:
    """train/val/test manifests of one language's Tux Paint phrases under `out_dir`; returns split -> manifest.

    Held out by utterance with `split_phrases` (a sentence never in two splits). The recordings stay
    where Debian installed them (absolute paths); the train manifest is written last, so its presence
    means the whole set is there.
    """
    split = split_phrases(tuxpaint_phrases(root, lang), seed)  # every split gets at least one sentence
    out = Path(out_dir)
    paths = {k: write_phrase_manifest(out / k / MANIFEST, split[k]) for k in ("test", "val", "train")}
    return {k: paths[k] for k in ("train", "val", "test")}
