"""Configuration and shared pieces of the decoder-only generators (notes: "Generation").

Two architectures read one `GeneratorConfig`:

* "lstm" (train/generate/model.py): an LSTM over a token sequence: characters, words,
  or an image's pixels in raster order (the notes' "pixel as a character" slide);
* "grid" (train/generate/grid_lstm.py): a 2-D LSTM that produces each pixel from its left and
  upper neighbours (the notes' position-aware generator).

Both follow the bundle contract with an encoder that only turns the condition into the
initial states (`encode(condition [B] int64)` -> {"state.<name>": [B, ...]}) and a step
graph with no memory tensors. Token ids 0-3 are the specials (<pad> <unk> <s> </s>);
`blocked_ids` never come out of the step (for images: every special, so a decode is
exactly height*width pixels long).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

ARCHS = ("lstm", "grid")
INPUT_MODES = ("token", "distribution")
UNITS = ("char", "word", "pixel")


@dataclass
class GeneratorConfig:
    """arch: "lstm" or "grid" (images only).
    input_mode: "token" (teacher forcing: the previous token's embedding) or
      "distribution" (the notes' "better idea?": the expected embedding under the
      previous step's softmax; the step then carries that softmax as `state.prev_dist`).
    n_conditions: 0 = unconditional; else the number of classes a condition id picks.
    height/width: the image size for unit "pixel" (the grid LSTM needs them).
    blocked_ids: token ids the model never emits (their log-prob is -inf everywhere).
    """

    unit: str = "char"
    arch: str = "lstm"
    emb_dim: int = 64
    hidden: int = 256
    layers: int = 1
    dropout: float = 0.0
    n_conditions: int = 0
    cond_dim: int = 32
    input_mode: str = "token"
    height: int = 0
    width: int = 0
    blocked_ids: list[int] = field(default_factory=lambda: [0, 2])

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"GeneratorConfig.unit must be one of {', '.join(UNITS)}, got {self.unit!r}")
        if self.arch not in ARCHS:
            raise ValueError(f"GeneratorConfig.arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"GeneratorConfig.input_mode must be one of {', '.join(INPUT_MODES)}, got {self.input_mode!r}")
        for name in ("emb_dim", "hidden", "layers", "cond_dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"GeneratorConfig.{name} must be a positive integer, got {v!r}")
        if self.n_conditions < 0:
            raise ValueError(f"GeneratorConfig.n_conditions must be >= 0, got {self.n_conditions}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GeneratorConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.unit == "pixel" and (self.height < 1 or self.width < 1):
            raise ValueError("GeneratorConfig: unit 'pixel' needs height and width >= 1")
        if self.arch == "grid" and self.unit != "pixel":
            raise ValueError("GeneratorConfig: arch 'grid' (2-D LSTM) is for images only: use unit='pixel'")
        if self.arch == "grid" and self.input_mode != "token":
            raise ValueError("GeneratorConfig: arch 'grid' supports input_mode='token' only")

    @property
    def conditional(self) -> bool:
        return self.n_conditions > 0

    @property
    def sequence_length(self) -> int:
        """Tokens per image (0 for text)."""
        return self.height * self.width if self.unit == "pixel" else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        return cls(**d)


class ConditionEncoder(nn.Module):
    """condition [B] int64 -> (cond vector [B, cond_dim] or None, h0 [B, H], c0 [B, H]).

    Conditional: h0, c0 = tanh(W e(condition)), the notes' "condition as the first
    state"; the vector e(condition) is also fed at every step so it is never forgotten.
    Unconditional: h0, c0 are learned vectors (the condition input only sets B).
    """

    def __init__(self, cfg: GeneratorConfig, hidden: int):
        super().__init__()
        self.cfg = cfg
        if cfg.conditional:
            self.emb = nn.Embedding(cfg.n_conditions, cfg.cond_dim)
            self.init = nn.Linear(cfg.cond_dim, 2 * hidden)
        else:
            self.h0 = nn.Parameter(torch.zeros(hidden))
            self.c0 = nn.Parameter(torch.zeros(hidden))

    def forward(self, condition: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        if self.cfg.conditional:
            e = self.emb(condition)
            h0, c0 = torch.tanh(self.init(e)).chunk(2, dim=-1)
            return e, h0, c0
        B = condition.shape[0]
        ones = torch.ones(B, 1, dtype=self.h0.dtype, device=self.h0.device) + condition.reshape(B, 1).to(self.h0.dtype) * 0
        return None, ones * self.h0, ones * self.c0


def block(logits: torch.Tensor, blocked_ids: list[int]) -> torch.Tensor:
    """logits [..., V] with the blocked ids set to -inf (so log_softmax gives them -inf)."""
    if not blocked_ids:
        return logits
    mask = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    mask[blocked_ids] = True
    return logits.masked_fill(mask, float("-inf"))


DATASETS = ("kjv", "fashion", "digits")


@dataclass
class GeneratorTrainConfig:
    """One generator training run.

    data: "kjv" (the King James Bible, verse by verse; `corpus` overrides the text file)
          or an image set "fashion" (Fashion-MNIST 28x28) / "digits" (scikit-learn 8x8).
    levels: intensity levels an image pixel is quantised to (the pixel vocabulary).
    conditional: images only: the class label is the condition.
    max_tokens: text sequences longer than this are cut (training only).
    max_train: use only the first N training examples (0 = all), for quick runs.
    """

    data: str = "kjv"
    corpus: str | None = None
    out_dir: str = "runs/generate"
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    levels: int = 4
    conditional: bool = False
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    clip: float = 1.0
    seed: int = 1
    max_tokens: int = 400
    max_train: int = 0
    vocab_min_count: int = 1
    checkpoint_every: int = 0
    max_steps: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = GeneratorConfig(**self.model)
        if self.data not in DATASETS:
            raise ValueError(f"GeneratorTrainConfig.data must be one of {', '.join(DATASETS)}, got {self.data!r}")
        for name in ("epochs", "batch_size", "max_tokens", "vocab_min_count"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"GeneratorTrainConfig.{name} must be a positive integer, got {v!r}")
        for name in ("checkpoint_every", "max_steps", "max_train"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"GeneratorTrainConfig.{name} must be an integer >= 0, got {v!r}")
        if not 2 <= self.levels <= 256:
            raise ValueError(f"GeneratorTrainConfig.levels must be between 2 and 256, got {self.levels}")
        if self.lr <= 0:
            raise ValueError(f"GeneratorTrainConfig.lr must be > 0, got {self.lr}")
        if self.clip < 0:
            raise ValueError(f"GeneratorTrainConfig.clip must be >= 0 (0 = off), got {self.clip}")
        if self.data == "kjv" and self.model.unit == "pixel":
            raise ValueError("data 'kjv' is text: use unit 'char' or 'word'")
        if self.data != "kjv" and self.model.unit != "pixel":
            raise ValueError(f"data {self.data!r} is images: the unit is 'pixel'")
        if self.conditional and self.data == "kjv":
            raise ValueError("conditional generation needs class labels: use an image set (fashion, digits)")

    @property
    def is_image(self) -> bool:
        return self.data != "kjv"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorTrainConfig:
        from ..core.config import config_from_dict

        return config_from_dict(cls, GeneratorConfig, d)
