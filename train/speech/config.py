"""Listen, Attend and Spell model configuration (a dataclass, validated on construction).

It goes into the run directory's `config.json` and the checkpoint; the exporter reads it back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

SPEECH_ATTENTIONS = ("additive", "location")


@dataclass
class SpeechModelConfig:
    """Listen, Attend and Spell (Chan et al. 2016) over log-mel frames, emitting characters.

    n_mels: width of the input frames (must equal the feature recipe's n_mels).
    listener_hidden: units per direction of every listener BLSTM; the memory is twice as wide.
    pyramid_layers: pyramidal BLSTM layers after the first BLSTM; each concatenates pairs of
                    frames, so the memory has ceil(T / 2**pyramid_layers) positions (3: 8x).
    dec_hidden, emb_dim: the speller's LSTM and character-embedding widths.
    att_dim: width of the additive attention MLP (the precomputed memory_key).
    attention: "additive" (Bahdanau: content only) or "location" (Chorowski et al. 2015:
               the score also sees a convolution over the previous step's attention, carried
               as the decoder state `state.prev_att`, so alignment moves forward monotonically).
    location_filters, location_kernel: that convolution's channels and (odd) width in frames.
    dropout: between listener layers and on the speller's embeddings and output layer.
    """

    n_mels: int = 80
    listener_hidden: int = 256
    pyramid_layers: int = 3
    dec_hidden: int = 256
    emb_dim: int = 64
    att_dim: int = 128
    attention: str = "additive"
    location_filters: int = 10
    location_kernel: int = 15
    dropout: float = 0.2

    def __post_init__(self) -> None:
        for name in ("n_mels", "listener_hidden", "dec_hidden", "emb_dim", "att_dim", "location_filters",
                     "location_kernel"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"SpeechModelConfig.{name} must be a positive integer, got {v!r}")
        if not isinstance(self.pyramid_layers, int) or isinstance(self.pyramid_layers, bool) \
                or not 0 <= self.pyramid_layers <= 5:
            raise ValueError(f"SpeechModelConfig.pyramid_layers must be an integer in 0..5 (3 = 8x time reduction), "
                             f"got {self.pyramid_layers!r}")
        if self.attention not in SPEECH_ATTENTIONS:
            raise ValueError(f"SpeechModelConfig.attention must be one of {', '.join(SPEECH_ATTENTIONS)}, "
                             f"got {self.attention!r}")
        if self.location_kernel % 2 == 0:
            raise ValueError(f"SpeechModelConfig.location_kernel must be odd (centred on each frame), "
                             f"got {self.location_kernel}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"SpeechModelConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def memory_dim(self) -> int:
        """Width D of the listener's output (forward and backward halves)."""
        return 2 * self.listener_hidden

    @property
    def key_dim(self) -> int:
        """Width A of memory_key."""
        return self.att_dim

    @property
    def time_reduction(self) -> int:
        """Frames per memory position: 2 ** pyramid_layers."""
        return 2 ** self.pyramid_layers

    def memory_length(self, frames: int) -> int:
        """L = ceil(frames / time_reduction): each pyramid layer pads an odd length by one frame."""
        for _ in range(self.pyramid_layers):
            frames = (frames + 1) // 2
        return frames

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeechModelConfig:
        """Read `to_dict` back; unknown keys are refused (a typo must not silently train the default)."""
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown speech model config keys {unknown}")
        return cls(**d)
