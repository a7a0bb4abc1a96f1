"""Where the speller listened: the Listen, Attend and Spell alignment picture.

Top: the log-mel spectrogram of the recording, the runtime's own features (time left to
right, low frequencies at the bottom), each output character written above the spectrogram
at the time of its attention peak. Under it, one row per output character: its attention
over the encoder positions, each position stretched over the `time_reduction` log-mel
frames it summarises (the pyramidal listener keeps one position per 8 frames), so both
panels share one time axis, in seconds, at the bottom. Each row is scaled to its own peak:
the picture shows where each character looked, not how sure it was.

Pillow + numpy only (no matplotlib), like the rest of the runtime; the colour map, text and
atomic PNG writing are the trace picture's (`trace_map`, `canvas`, `output_files`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError
from ..output_files import check_writable, write_atomic
from .canvas import _fit, _format_for, _text, hot_colormap
from .trace_map import FORCED_TEXT, TEXT

MARGIN = 10
LINE = 16  # px per text line (13 px font)
FONT_SIZE = 13
MAX_WIDTH = 1600  # px of the time axis at most (longer recordings are squeezed)
MAX_FRAME_PX = 4  # px per log-mel frame at most (short recordings are stretched)
SPEC_HEIGHT = 160  # px of the spectrogram
MAX_ROW_PX, MIN_ROW_PX = 16, 3  # px per attention row
MAX_ATT_HEIGHT = 1200  # px of all attention rows together
MIN_WIDTH = 560  # room for the title lines
SPACE_LABEL = "_"  # the space character's row label (drawn grey)
PEAK_MARK = (0, 190, 255)  # cyan: a character's attention peak, on the spectrogram


@dataclass
class SpeechAttentionFigure:
    """The picture and where its panels are (for tests and callers that annotate it)."""

    image: Image.Image
    x0: int  # left edge of both panels
    width: int  # px of the time axis
    spec_top: int
    spec_height: int
    att_top: int
    row_height: int  # px per character row
    seconds: float  # audio time the axis spans (frames * hop)


def _font():
    return ImageFont.load_default(size=FONT_SIZE)


def _scaled_spectrogram(features: np.ndarray) -> np.ndarray:
    """[T, n_mels] log-mels -> [n_mels, T] in [0, 1], low bins at the bottom, over the 10th-99.5th percentile of
    the values above each band's floor (background noise is black and speech keeps the shades, however much
    digital silence, which sits at the floor, the recording holds)."""
    f = np.asarray(features, dtype=np.float64).T[::-1]
    floor = f.min(axis=1, keepdims=True) + 1e-6  # each band's floor: digital silence, kept out of the range
    above = f[f > floor]
    lo, hi = np.percentile(above, [10.0, 99.5]) if above.size else (0.0, 1.0)
    if hi - lo <= 1e-12:  # too few distinct levels for percentiles: the whole range
        lo, hi = (float(f.min()), float(f.max())) if f.size else (0.0, 1.0)
    return np.clip((f - lo) / (hi - lo), 0.0, 1.0) if hi - lo > 1e-12 else np.zeros_like(f)


def _rows_over_frames(attention: np.ndarray, frames: int, time_reduction: int) -> np.ndarray:
    """[R, L] attention -> [R, frames], each position repeated over its frames, each row scaled to its peak."""
    a = np.repeat(np.asarray(attention, dtype=np.float64), time_reduction, axis=1)[:, :frames]
    peak = a.max(axis=1, keepdims=True) if a.size else np.ones((a.shape[0], 1))
    return np.where(peak > 1e-12, a / np.maximum(peak, 1e-12), 0.0)


def _stretch(rgb: np.ndarray, width: int, height: int, smooth: bool) -> Image.Image:
    img = Image.fromarray(rgb)
    if img.size == (width, height):
        return img
    return img.resize((width, height), Image.BILINEAR if smooth else Image.NEAREST, reducing_gap=None)


def _tick_step(seconds: float, width: int) -> float:
    """Seconds between time-axis labels: the smallest of 0.1, 0.2, 0.5, 1, 2, 5, ... at least 60 px apart."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if seconds <= 0 or width * step / seconds >= 60:
            return float(step)
    return 600.0


def check_attention(features: np.ndarray, tokens: list[str], attention: np.ndarray, time_reduction: int) -> None:
    """InputError (one line) unless the arrays fit: frames [T, n_mels], attention [len(tokens), ceil(T / r)]."""
    f, a = np.asarray(features), np.asarray(attention)
    if f.ndim != 2 or f.shape[0] == 0:
        raise InputError(f"features have shape {tuple(f.shape)}: pass the recording's log-mel frames [T, n_mels] "
                         "(Transcriber.log_mel)")
    if time_reduction < 1:
        raise InputError(f"time_reduction is {time_reduction}: pass the listener's frames per encoder position (8)")
    L = -(-f.shape[0] // time_reduction)
    if a.ndim != 2 or a.shape != (len(tokens), L):
        raise InputError(f"attention has shape {tuple(a.shape)} but {len(tokens)} characters over {f.shape[0]} "
                         f"frames ({L} positions of {time_reduction}) need {(len(tokens), L)}: pass the "
                         "hypothesis's attention for the same recording, unchanged")
    if not (np.isfinite(a).all() and np.isfinite(f).all()):
        raise InputError("features or attention contain NaN or infinite values: pass the runtime's outputs unchanged")


def speech_attention_figure(features: np.ndarray, tokens: list[str], attention: np.ndarray, time_reduction: int = 8,
                            hop_seconds: float = 0.01, title: str = "", freq_range: tuple[float, float] | None = None
                            ) -> SpeechAttentionFigure:
    """Draw the figure (see the module doc).

    features: [T, n_mels] log-mel frames of the whole recording; tokens: the output characters;
    attention: [len(tokens), ceil(T / time_reduction)], one row per character (rows sum to ~1);
    hop_seconds: seconds between frames; freq_range: (low, high) Hz of the mel bands, for the axis.
    """
    tokens = [str(t) for t in tokens]
    check_attention(features, tokens, attention, int(time_reduction))
    T = int(np.asarray(features).shape[0])
    R = len(tokens)
    seconds = T * hop_seconds
    width = min(MAX_WIDTH, T * MAX_FRAME_PX)
    row_h = max(MIN_ROW_PX, min(MAX_ROW_PX, MAX_ATT_HEIGHT // max(R, 1)))
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    labels = [SPACE_LABEL if t.isspace() else t for t in tokens]
    axis_labels = [f"{freq_range[1]:.0f} Hz", f"{freq_range[0]:.0f} Hz"] if freq_range else ["high", "low"]
    left = MARGIN + int(math.ceil(max([probe.textlength(s, font=font) for s in labels + axis_labels] + [20]))) + 8
    total_w = max(left + width + MARGIN, MIN_WIDTH)
    spec_top = MARGIN + 2 * LINE + 4 + LINE  # title, legend, then the characters above the spectrogram
    att_top = spec_top + SPEC_HEIGHT + 8
    axis_top = att_top + R * row_h + 2
    canvas = Image.new("RGB", (total_w, axis_top + LINE + 8 + MARGIN), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)

    text = "".join(tokens)
    line1 = f"{title}: \"{text}\"" if title else f"\"{text}\""
    line2 = (f"top: log-mel spectrogram ({np.asarray(features).shape[1]} bands, low at the bottom); below: each "
             f"character's attention over the encoder positions ({time_reduction} frames each), row scaled to "
             "its peak; cyan = peaks; _ = space")
    _text(draw, (MARGIN, MARGIN), _fit(draw, line1, total_w - 2 * MARGIN, font), TEXT, font)
    small = ImageFont.load_default(size=FONT_SIZE - 1)
    _text(draw, (MARGIN, MARGIN + LINE), _fit(draw, line2, total_w - 2 * MARGIN, small), FORCED_TEXT, small)

    spec = hot_colormap(_scaled_spectrogram(features))
    canvas.paste(_stretch(spec, width, SPEC_HEIGHT, smooth=True), (left, spec_top))
    for s, y in zip(axis_labels, (spec_top, spec_top + SPEC_HEIGHT - LINE)):
        _text(draw, (left - 6 - draw.textlength(s, font=font), y), s, FORCED_TEXT, font)

    rows = _rows_over_frames(attention, T, int(time_reduction))
    if R:
        heat = hot_colormap(rows).repeat(row_h, axis=0)
        canvas.paste(_stretch(heat, width, R * row_h, smooth=False), (left, att_top))
    every = max(1, math.ceil(LINE / row_h))
    for r in range(0, R, every):
        s = labels[r]
        y = att_top + r * row_h + row_h / 2 - LINE / 2 + 1
        _text(draw, (left - 6 - draw.textlength(s, font=font), y), s,
              FORCED_TEXT if tokens[r].isspace() else TEXT, font)

    # each character above the spectrogram at its attention peak (spaces only as a tick)
    peaks = [int(np.argmax(row)) for row in rows] if R else []
    last_right = -1e9
    for r, p in enumerate(peaks):
        x = left + (p + 0.5) * width / T
        draw.line([(x, spec_top - 4), (x, spec_top - 1)], fill=PEAK_MARK)
        if tokens[r].isspace():
            continue
        w = draw.textlength(labels[r], font=font)
        if x - w / 2 > last_right + 1:  # skip a label that would overlap its neighbour
            _text(draw, (x - w / 2, spec_top - 4 - LINE), labels[r], TEXT, font)
            last_right = x + w / 2

    step = _tick_step(seconds, width)
    t = 0.0
    while t <= seconds + 1e-9:
        x = left + t / seconds * width if seconds else left
        draw.line([(x, axis_top), (x, axis_top + 3)], fill=TEXT)
        s = f"{t:g} s"
        w = draw.textlength(s, font=font)
        _text(draw, (min(max(x - w / 2, left - w / 2), total_w - w - 2), axis_top + 4), s, TEXT, font)
        t = round(t + step, 6)
    return SpeechAttentionFigure(canvas, left, width, spec_top, SPEC_HEIGHT, att_top, row_h, seconds)


def save_speech_attention(path: str | os.PathLike, features: np.ndarray, tokens: list[str], attention: np.ndarray,
                          **kw) -> SpeechAttentionFigure:
    """Draw the figure and write it atomically (PNG, or the format of the suffix); kw as speech_attention_figure."""
    path = check_writable(path)
    fmt = _format_for(Path(os.fsdecode(path)))
    fig = speech_attention_figure(features, tokens, attention, **kw)
    write_atomic(path, lambda f: fig.image.save(f, format=fmt))
    return fig


def save_transcript_attention(path: str | os.PathLike, transcriber, source, transcript, index: int = 0,
                              title: str | None = None) -> SpeechAttentionFigure:
    """The picture for one `Transcriber.transcribe` result: `source` is the recording it was given
    (re-read for its log-mel frames), `index` the hypothesis (beam n-best) to draw."""
    feats = transcriber.log_mel(source)
    L = transcriber.memory_length(feats.shape[0])
    h = transcript.hypotheses[index] if transcript.hypotheses else None
    tokens = list(h.tokens) if h is not None else []
    att = h.attention if h is not None and h.attention is not None and h.attention.size else np.zeros((len(tokens), L))
    cfg = transcriber.features
    if title is None:
        title = Path(os.fsdecode(source)).name if isinstance(source, (str, os.PathLike)) else "recording"
    return save_speech_attention(path, feats, tokens, att, time_reduction=transcriber.time_reduction,
                                 hop_seconds=cfg.hop_length / cfg.sample_rate, title=title,
                                 freq_range=(cfg.fmin, cfg.upper_hz))
