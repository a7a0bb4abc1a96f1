"""The speech alignment picture: the spectrogram on top, one attention row per character under it, on
one time axis. Checked on hand-made arrays (where each bright spot must land) and on a tiny trained model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from speech_toy import tiny_speech_bundle, tone_audio  # noqa: E402

from edge_s2s.runtime.errors import InputError
from edge_s2s.runtime.pictures.speech_attention import (
    save_speech_attention,
    save_transcript_attention,
    speech_attention_figure,
)
from edge_s2s.runtime.search import Beam
from edge_s2s.runtime.tasks.transcriber import Transcriber

T, BANDS, R = 100, 12, 8  # frames, mel bands, time reduction


def _arrays(peaks: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Features dark except band 3 over frames 40-59; one-hot attention at the given positions."""
    feats = np.zeros((T, BANDS), np.float32)
    feats[40:60, 3] = 5.0
    att = np.zeros((len(peaks), -(-T // R)), np.float32)
    att[np.arange(len(peaks)), peaks] = 1.0
    return feats, att


def _brightness(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.float64)


def test_each_row_is_bright_where_its_character_looked():
    feats, att = _arrays([1, 6, 11])
    fig = speech_attention_figure(feats, ["a", " ", "b"], att, time_reduction=R, hop_seconds=0.01, title="x.wav")
    g = _brightness(fig.image)
    px_per_frame = fig.width / T
    for r, pos in enumerate([1, 6, 11]):
        y = fig.att_top + r * fig.row_height + fig.row_height // 2
        row = g[y, fig.x0: fig.x0 + fig.width]
        lit = np.flatnonzero(row > 200)
        assert lit.size, r
        lo, hi = pos * R * px_per_frame, min(T, (pos + 1) * R) * px_per_frame
        assert lo - 1 <= lit[0] and lit[-1] <= hi + 1, (r, lit[0], lit[-1], lo, hi)
    assert fig.seconds == pytest.approx(1.0)


def test_the_spectrogram_keeps_time_left_to_right_and_low_bands_at_the_bottom():
    feats, att = _arrays([5])
    fig = speech_attention_figure(feats, ["a"], att, time_reduction=R)
    g = _brightness(fig.image)[fig.spec_top: fig.spec_top + fig.spec_height, fig.x0: fig.x0 + fig.width]
    ys, xs = np.nonzero(g > 200)
    assert xs.min() >= 38 * fig.width / T and xs.max() <= 62 * fig.width / T  # frames 40-59
    band_h = fig.spec_height / BANDS
    assert ys.min() >= (BANDS - 4) * band_h - 2 * band_h and ys.max() <= (BANDS - 3) * band_h + 2 * band_h  # band 3


def test_long_recordings_are_squeezed_and_many_characters_get_thin_rows():
    feats = np.random.default_rng(0).standard_normal((4000, BANDS)).astype(np.float32)
    att = np.full((300, 500), 1 / 500, np.float32)
    fig = speech_attention_figure(feats, ["x"] * 300, att, time_reduction=R)
    assert fig.width == 1600 and fig.row_height * 300 <= 1200 and fig.image.size[1] < 1600


@pytest.mark.parametrize("feats,tokens,att,match", [
    (np.zeros((100, 12)), ["a"], np.zeros((2, 13)), "attention has shape"),
    (np.zeros((100, 12)), ["a"], np.zeros((1, 12)), "13 positions|need \\(1, 13\\)"),
    (np.zeros((0, 12)), [], np.zeros((0, 0)), "features have shape"),
    (np.zeros((100, 12)), ["a"], np.full((1, 13), np.nan), "NaN"),
])
def test_arrays_that_do_not_fit_are_one_line(feats, tokens, att, match):
    with pytest.raises(InputError, match=match) as e:
        speech_attention_figure(feats, tokens, att, time_reduction=R)
    assert "\n" not in str(e.value)


def test_save_is_a_png_and_refuses_a_missing_directory(tmp_path):
    feats, att = _arrays([3])
    out = save_speech_attention(tmp_path / "a.png", feats, ["a"], att, time_reduction=R)
    with Image.open(tmp_path / "a.png") as im:
        assert im.format == "PNG" and im.size == out.image.size
    with pytest.raises(InputError, match="does not exist"):
        save_speech_attention(tmp_path / "no" / "a.png", feats, ["a"], att, time_reduction=R)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # nothing half-written


def test_a_trained_model_s_picture_greedy_and_beam(tmp_path_factory, tmp_path):
    asr = Transcriber.load(tiny_speech_bundle(tmp_path_factory.mktemp("speech")))
    x = tone_audio("0312")
    for search in (None, Beam(3)):
        r = asr.transcribe([x]) if search is None else asr.transcribe([x], search=search)
        fig = save_transcript_attention(tmp_path / "t.png", asr, x, r[0])
        h = r[0].hypotheses[0]
        assert fig.seconds == pytest.approx(asr.log_mel(x).shape[0] * 0.01)
        g = _brightness(fig.image)
        for k, pos in enumerate(np.argmax(h.attention, axis=1)):  # each row's brightest pixel is its peak
            y = fig.att_top + k * fig.row_height + fig.row_height // 2
            col = int(np.argmax(g[y, fig.x0: fig.x0 + fig.width]))
            frames = asr.log_mel(x).shape[0]
            assert pos * 8 * fig.width / frames - 1 <= col <= (pos + 1) * 8 * fig.width / frames + 1
    quiet = asr.transcribe([np.zeros(4000, np.float32)])[0]
    fig = save_transcript_attention(tmp_path / "q.png", asr, np.zeros(4000, np.float32), quiet)
    assert fig.image.size[1] < 300  # the spectrogram and the axis, no character rows
