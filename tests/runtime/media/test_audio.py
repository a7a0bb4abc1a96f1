"""Reading audio for the runtime: every encoding gives the same samples, resampling keeps pitch,
bad input is one line."""

import io
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from paths import SHARED

from edge_s2s.runtime.errors import InputError
from edge_s2s.runtime.media.audio import (
    SILENCE_DB,
    frame_levels_db,
    is_silence,
    load_audio,
    pause_cuts,
    pauses,
    resample,
    sound_bounds,
    split_on_silence,
    trim_silence,
)

FSDD = SHARED / "data" / "fsdd" / "recordings"


def sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, x: np.ndarray, rate: int, subtype: str = "PCM_16", fmt: str | None = None) -> Path:
    sf.write(str(path), x, rate, subtype=subtype, format=fmt)
    return path


def peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * rate / x.size)


def one_line_error(source, rate=16000, **kw) -> str:
    with pytest.raises(InputError) as e:
        load_audio(source, rate, **kw)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 300
    return msg


@pytest.mark.parametrize("subtype,tol", [("PCM_U8", 1 / 128), ("PCM_16", 1 / 32768), ("PCM_24", 1e-6),
                                         ("PCM_32", 1e-6), ("FLOAT", 0.0), ("DOUBLE", 1e-7)])
def test_every_wav_encoding_gives_the_same_samples(tmp_path, subtype, tol):
    x = sine(440, 16000, 0.25)
    y, info = load_audio(write(tmp_path / f"{subtype}.wav", x, 16000, subtype), 16000)
    assert y.dtype == np.float32 and y.ndim == 1 and y.shape == x.shape
    assert info.subtype == subtype and info.format == "WAV" and info.channels == 1 and info.sample_rate == 16000
    assert np.max(np.abs(y - x)) <= tol + 1e-9
    assert abs(float(y.mean())) < 0.01  # 8-bit WAV is unsigned: the 128 offset must be gone


@pytest.mark.parametrize("fmt,subtype", [("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_flac_and_ogg(tmp_path, fmt, subtype):
    x = sine(1000, 16000, 0.5)
    y, info = load_audio(write(tmp_path / f"a.{fmt.lower()}", x, 16000, subtype, fmt), 16000)
    assert info.format == fmt and y.size == x.size
    assert abs(peak_hz(y, 16000) - 1000) <= 4
    if fmt == "FLAC":  # lossless
        assert np.max(np.abs(y - x)) <= 1 / 32768


def test_path_and_bytes_agree(tmp_path):
    p = write(tmp_path / "a.wav", sine(300, 8000, 0.3), 8000)
    a, ia = load_audio(p, 16000)
    b, ib = load_audio(p.read_bytes(), 16000)
    assert np.array_equal(a, b)
    assert ia.name == str(p) and ib.name == "bytes input"


def test_stereo_is_averaged(tmp_path):
    left = sine(440, 16000, 0.2)
    right = sine(660, 16000, 0.2, amp=0.25)
    y, info = load_audio(write(tmp_path / "st.wav", np.stack([left, right], 1), 16000, "FLOAT"), 16000)
    assert info.channels == 2
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("rate,freq", [(8000, 1000.0), (44100, 3000.0), (22050, 440.0), (11025, 2000.0)])
def test_resampled_to_16k_keeps_length_and_pitch(tmp_path, rate, freq):
    x = sine(freq, rate, 0.5)
    y, info = load_audio(write(tmp_path / f"r{rate}.wav", x, rate), 16000)
    assert info.sample_rate == rate and info.rate == 16000
    assert y.size == round(x.size * 16000 / rate)
    assert abs(peak_hz(y, 16000) - freq) <= 16000 / y.size * 1.01
    mid = y[y.size // 4: 3 * y.size // 4]  # away from the resampler's edge transients
    assert abs(np.sqrt(np.mean(mid.astype(np.float64) ** 2)) - 0.5 / math.sqrt(2)) < 0.01  # level kept


def test_downsampling_removes_what_cannot_be_represented():
    """A 10 kHz tone has no place at 16 kHz (Nyquist 8 kHz): a well-kept resampler filters it out, not aliases it."""
    y = resample(sine(10000, 48000, 0.5), 48000, 16000)
    assert y.size == 8000 and np.sqrt(np.mean(y[1000:-1000] ** 2)) < 1e-3


def test_loud_float_is_scaled_not_clipped(tmp_path):
    x = sine(200, 16000, 0.1, amp=2.0)
    y, info = load_audio(write(tmp_path / "hot.wav", x, 16000, "FLOAT"), 16000)
    assert info.rescaled and math.isclose(float(np.max(np.abs(y))), 1.0, rel_tol=1e-6)
    np.testing.assert_allclose(y, x / np.max(np.abs(x)), atol=1e-7)


def test_non_finite_samples(tmp_path):
    x = sine(200, 16000, 0.1)
    x[50] = np.nan
    p = write(tmp_path / "nan.wav", x, 16000, "FLOAT")
    msg = one_line_error(p)
    assert str(p) in msg and "NaN or infinite" in msg


def test_empty_file_and_zero_samples(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert "is empty (0 bytes)" in one_line_error(empty)
    assert "is empty" in one_line_error(b"")
    zero = write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    msg = one_line_error(zero)
    assert str(zero) in msg and "no audio samples" in msg


def test_not_audio(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not a recording\n", encoding="utf-8")
    msg = one_line_error(text)
    assert str(text) in msg and "not audio (it is a text file)" in msg
    png = tmp_path / "pic.wav"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert "is a PNG image, not audio" in one_line_error(png)
    m4a = tmp_path / "voice.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    assert "MP4/M4A" in one_line_error(m4a) and "ffmpeg" in one_line_error(m4a)
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    assert "not audio" in one_line_error(noise)


def test_truncated_header(tmp_path):
    full = write(tmp_path / "full.wav", sine(300, 16000, 0.1), 16000).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full[:20])
    assert "starts like a WAV file but its header is corrupt" in one_line_error(cut)


def test_missing_directory_and_wrong_type(tmp_path):
    assert "no such file" in one_line_error(tmp_path / "nope.wav")
    assert "is a directory" in one_line_error(tmp_path)
    assert "cannot read audio from a builtins.int" in one_line_error(5)
    with pytest.raises(ValueError):
        load_audio(b"x", 0)


def test_max_seconds_is_checked_before_decoding(tmp_path):
    p = write(tmp_path / "long.wav", sine(300, 8000, 3.0), 8000)
    msg = one_line_error(p, max_seconds=2.0)
    assert "3.0 s long, more than the limit of 2 s" in msg
    assert load_audio(p, 8000, max_seconds=3.0)[0].size == 24000


def test_frame_levels_hand_worked():
    square = np.tile(np.array([1.0, -1.0]), 400)  # full-scale square wave: mean square 1 -> 0 dBFS
    np.testing.assert_allclose(frame_levels_db(square, 8000, 20.0), 0.0, atol=1e-9)
    full_sine = sine(400, 8000, 0.2, amp=1.0)  # 8 whole periods per 20 ms frame: mean square 1/2
    np.testing.assert_allclose(frame_levels_db(full_sine, 8000, 20.0), 10 * np.log10(0.5), atol=1e-5)
    levels = frame_levels_db(np.full(250, 0.3), 8000, 20.0)  # pure DC: no sound; 160 + a partial 90
    assert levels.shape == (2,) and np.all(levels < -190)


def test_silence_detection():
    rate = 16000
    rng = np.random.default_rng(0)
    assert is_silence(np.zeros(rate, np.float32), rate)
    assert is_silence(np.zeros(0, np.float32), rate)
    hiss = rng.standard_normal(rate) * 10 ** (-70 / 20)  # -70 dBFS room noise
    assert is_silence(hiss, rate)
    assert is_silence(hiss + 0.2, rate)  # a DC offset is not sound
    assert not is_silence(sine(300, rate, 1.0, amp=0.05), rate)  # about -29 dBFS
    burst = np.zeros(3 * rate)
    burst[rate: rate + 480] = sine(500, rate, 0.03, amp=0.1)  # one 30 ms click in 3 s of silence
    assert not is_silence(burst, rate)
    quiet = sine(300, rate, 1.0, amp=10 ** ((SILENCE_DB - 5) / 20) * math.sqrt(2))  # RMS 5 dB under the threshold
    assert is_silence(quiet, rate) and not is_silence(quiet, rate, threshold_db=SILENCE_DB - 10)


def test_trim_silence_finds_the_sound():
    rate = 8000
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(rate) * 1e-4).astype(np.float32)  # 1 s of -80 dBFS noise
    x[3000:4600] += sine(440, rate, 0.2, amp=0.3)
    start, end = sound_bounds(x, rate)  # 10 ms frames (80 samples), 10 ms margin
    assert 3000 - 80 - 80 <= start <= 3000 and 4600 <= end <= 4600 + 80 + 80
    t = trim_silence(x, rate)
    assert t.size == end - start and np.shares_memory(t, x)
    assert trim_silence(np.zeros(800, np.float32), rate).size == 800  # nothing louder: kept whole


@pytest.mark.skipif(not FSDD.is_dir(), reason="../shared/data/fsdd is not present")
def test_no_human_digit_recording_counts_as_silence():
    files = sorted(FSDD.glob("*.wav"))[::10]
    assert len(files) >= 200
    for f in files:
        x, info = load_audio(f, 16000)
        assert info.sample_rate == 8000 and info.subtype == "PCM_16"
        assert not is_silence(x, 16000), f


def test_bytes_of_a_wav_written_in_memory():
    buf = io.BytesIO()
    sf.write(buf, sine(700, 44100, 0.2), 44100, format="WAV", subtype="PCM_24")
    y, info = load_audio(bytearray(buf.getvalue()), 16000)
    assert info.subtype == "PCM_24" and y.size == round(0.2 * 16000)


def _speech_like(rate: int, plan: list[tuple[str, float]], seed: int = 2) -> np.ndarray:
    """Tones ("t") and pauses ("p") of the given seconds, over -80 dBFS noise."""
    rng = np.random.default_rng(seed)
    parts = [sine(440 + 100 * i, rate, s, amp=0.3) if kind == "t" else np.zeros(int(rate * s))
             for i, (kind, s) in enumerate(plan)]
    x = np.concatenate(parts)
    return (x + rng.standard_normal(x.size) * 1e-4).astype(np.float32)


def test_pause_cuts_fall_in_the_pauses_on_the_grid():
    rate = 8000
    x = _speech_like(rate, [("t", 1.0), ("p", 0.3), ("t", 1.0), ("p", 0.1), ("t", 1.0), ("p", 0.5), ("t", 0.5)])
    cuts = pause_cuts(x, rate, align=640)
    assert len(cuts) == 2  # the 100 ms pause is shorter than SPLIT_GAP_MS
    assert 1.0 * rate < cuts[0] < 1.3 * rate and 3.4 * rate < cuts[1] < 3.9 * rate
    assert all(c % 640 == 0 for c in cuts)
    assert pause_cuts(np.zeros(0, np.float32), rate).size == 0


def test_split_on_silence_packs_pieces_under_the_limit():
    rate = 8000
    plan = [("t", 0.8), ("p", 0.3)] * 6 + [("t", 0.8)]  # 7 tones, 7.4 s
    x = _speech_like(rate, plan)
    assert split_on_silence(x, rate, 10.0) == [(0, x.size)]  # within the limit: one piece
    pieces = split_on_silence(x, rate, 2.5, align=80)
    assert pieces[0][0] == 0 and pieces[-1][1] == x.size
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))  # end to end, nothing lost
    assert all(e - s <= 2.5 * rate for s, e in pieces)
    assert len(pieces) == 4  # 7.4 s: the fewest pieces of at most 2.5 s that end in pauses
    for s, e in pieces:  # no tone is cut: each boundary is inside a pause
        assert is_silence(x[max(0, s - 40): s + 40], rate) or s == 0


def test_split_on_silence_leaves_an_unbroken_stretch_long():
    rate = 8000
    x = _speech_like(rate, [("t", 0.5), ("p", 0.3), ("t", 3.0), ("p", 0.3), ("t", 0.5)])
    pieces = split_on_silence(x, rate, 2.0)
    assert pieces[0][1] - pieces[0][0] <= 2 * rate
    assert max(e - s for s, e in pieces) > 2 * rate  # the 3 s tone has no pause: left for the caller to refuse
    assert split_on_silence(_speech_like(rate, [("t", 4.0)]), rate, 2.0) == [(0, 4 * rate)]


def test_split_on_silence_cuts_the_longest_pause_first():
    rate = 8000
    # two "numbers" of three words each (0.2 s between words), 0.8 s between the numbers
    number = [("t", 0.5), ("p", 0.2), ("t", 0.5), ("p", 0.2), ("t", 0.5)]
    x = _speech_like(rate, number + [("p", 0.8)] + number)
    pieces = split_on_silence(x, rate, 2.5)
    assert len(pieces) == 2 and 1.9 * rate < pieces[0][1] < 2.7 * rate  # between the numbers, not between words
    assert [c for c, _ in pauses(x, rate)] == list(pause_cuts(x, rate))
    assert max(g for _, g in pauses(x, rate)) >= 0.7 * rate


def test_pauses_full_of_room_noise_are_still_pauses():
    """Issue 17: a quiet speaker (-33 dBFS) with -50 dBFS noise between words had no pause 35 dB down."""
    rate = 8000
    plan = [("t", 0.6), ("p", 0.3)] * 4 + [("t", 0.6)]
    x = _speech_like(rate, plan) * 0.1  # tones at about -33 dBFS
    noisy = (x + np.random.default_rng(1).standard_normal(x.size) * 10 ** (-50 / 20)).astype(np.float32)
    cuts = pause_cuts(noisy, rate)
    assert len(cuts) == 4
    for k, c in enumerate(cuts):  # each cut inside the k-th pause
        assert 0.6 + 0.9 * k < c / rate < 0.9 + 0.9 * k
    # a steady sound over noise is not cut anywhere (nothing near the floor is 12 dB below the peak)
    steady = (sine(440, rate, 4.0, amp=0.03) + np.random.default_rng(1).standard_normal(4 * rate) * 1e-2)
    assert pause_cuts(steady.astype(np.float32), rate).size == 0
