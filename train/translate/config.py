"""Model and training configuration: plain dataclasses, validated on construction.

Both are written to the run directory's `config.json` and read back by `--resume` and by
the exporter, so a run directory fully describes how its checkpoints were made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.config import config_from_dict
from ..methods.exposure import INPUT_FEEDS, FeedConfig, check_feed, feed_from

TOKENIZERS = ("word", "sentencepiece")
INIT_STATES = ("learned", "encoder")
SUBWORD_TYPES = ("unigram", "bpe")
SELECT_BY = ("loss", "bleu")
ATTENTIONS = ("dot", "general", "additive", "cosine", "none")
DECODERS = ("lstm", "ntm")


@dataclass
class ModelConfig:
    """The attention encoder-decoder of the notes (bidirectional LSTM encoder, LSTM decoder).

    The encoder is bidirectional, so the memory width D = 2 * enc_hidden.
    attention: the match function between the decoder state z and each memory position:
      dot      z . h                       (needs dec_hidden == D)
      general  z . (W h)                   (bilinear)
      additive v . tanh(W_h h + W_z z)     (MLP, Bahdanau; att_dim = hidden size of the MLP)
      cosine   s * cos(z, W h)             (learnable scale s)
      none     no attention: the decoder starts from the encoder's final states and reads
               that final vector at every step (the notes' first encoder-decoder).
    decoder: "lstm" (the attention LSTM decoder above) or "ntm": a Neural Turing Machine
      decoder whose memory starts as the encoder's outputs projected to ntm_width, read
      and written by content addressing (train/translate/ntm_decoder.py; `attention` is unused).
    ntm_width, ntm_read_heads, ntm_write_heads: that memory's row width and its heads.
    input_feed: what each step reads: "token" (the previous word's embedding) or
      "distribution" (the notes' "better idea?": the expected embedding under the previous
      softmax, carried as `state.prev_dist`; train/methods/exposure.py).
    feed_attention: Luong et al. 2015's input feeding (section 3.3): the previous step's attentional
      vector tanh(W [z; context]) is also fed to the LSTM, carried as `state.att_feed` [N, dec_hidden],
      so each step knows what the last one attended to and produced.
    init_state: the attention decoder's first state: "learned" (one vector z0 for every sentence) or
      "encoder" (tanh of a projection of the encoder's final states, Bahdanau et al. 2015 A.2.2).
      The no-attention model and the NTM decoder always start from the encoder.
    """

    emb_dim: int = 64
    enc_hidden: int = 128
    dec_hidden: int = 256
    attention: str = "general"
    att_dim: int = 128  # only used by "additive"
    dropout: float = 0.1
    decoder: str = "lstm"
    ntm_width: int = 64
    ntm_read_heads: int = 1
    ntm_write_heads: int = 1
    input_feed: str = "token"
    feed_attention: bool = False
    init_state: str = "learned"

    def __post_init__(self) -> None:
        if self.init_state not in INIT_STATES:
            raise ValueError(f"ModelConfig.init_state must be one of {', '.join(INIT_STATES)}, got {self.init_state!r}")
        if not isinstance(self.feed_attention, bool):
            raise ValueError(f"ModelConfig.feed_attention must be true or false, got {self.feed_attention!r}")
        if self.feed_attention and self.decoder != "lstm":
            raise ValueError("ModelConfig.feed_attention (Luong input feeding) is for the LSTM decoder: "
                             "drop it or use decoder='lstm'")
        if self.input_feed not in INPUT_FEEDS:
            raise ValueError(f"ModelConfig.input_feed must be one of {', '.join(INPUT_FEEDS)}, got {self.input_feed!r}")
        if self.decoder not in DECODERS:
            raise ValueError(f"ModelConfig.decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        for name in ("emb_dim", "enc_hidden", "dec_hidden", "att_dim", "ntm_width", "ntm_read_heads",
                     "ntm_write_heads"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {v!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"ModelConfig.attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.decoder == "lstm" and self.attention == "dot" and self.dec_hidden != self.memory_dim:
            raise ValueError(
                f"dot attention compares the decoder state with the memory directly, so dec_hidden ({self.dec_hidden}) "
                f"must equal the memory width 2*enc_hidden ({self.memory_dim}): set dec_hidden={self.memory_dim} "
                "or use attention='general'"
            )

    @property
    def memory_dim(self) -> int:
        return 2 * self.enc_hidden

    @property
    def key_dim(self) -> int:
        """Width A of memory_key."""
        if self.attention == "dot":
            return self.memory_dim
        if self.attention == "additive":
            return self.att_dim
        if self.attention == "none":
            return 0
        return self.dec_hidden  # general, cosine: key = W memory lives in the query space


@dataclass
class TrainConfig:
    """One training run. `data` is a tab-separated parallel text file (source<TAB>target).

    feed: what the decoder reads while training (teacher forcing, scheduled sampling, or the
    distribution; train/methods/exposure.py).
    """

    data: str = ""
    out_dir: str = "runs/translate"
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    clip: float = 1.0  # gradient norm clip (0 = off)
    seed: int = 1
    val_fraction: float = 0.05
    val_file: str | None = None  # a separate TSV for validation (then val_fraction is ignored)
    max_source_length: int = 50  # words, the end token not counted; longer pairs are skipped
    max_target_length: int = 50
    vocab_min_count: int = 1
    vocab_max_size: int | None = 30000
    checkpoint_every: int = 0  # also write last.pt every N optimizer steps (0 = only at epoch ends)
    max_steps: int = 0  # stop after this many optimizer steps in total (0 = run all epochs)
    keep_epochs: int = 0  # also keep the last N epoch-end checkpoints (epoch-NNN.pt) to average
    val_bleu_max: int = 500  # validation sentences decoded for BLEU each epoch (0 = skip BLEU)
    device: str = "cpu"
    lowercase: bool = True
    feed: FeedConfig = field(default_factory=FeedConfig)
    tokenizer: str = "word"  # "word" or "sentencepiece" (subwords learnt from the training split)
    subword_vocab_size: int = 8000
    subword_type: str = "unigram"  # SentencePiece's "unigram" or "bpe"
    label_smoothing: float = 0.0  # Szegedy et al. 2016: the target keeps 1 - eps, eps spread over the vocabulary
    lr_decay: float = 1.0  # multiply the learning rate by this after an epoch that did not improve validation
    patience: int = 0  # stop after this many epochs in a row without improvement (0 = run every epoch)
    select_by: str = "loss"  # best.pt: lowest validation "loss" or highest validation "bleu"

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        self.feed = feed_from(self.feed)
        check_feed(self.feed, self.model.input_feed)
        for name in ("epochs", "batch_size", "max_source_length", "max_target_length", "vocab_min_count"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {v!r}")
        for name in ("checkpoint_every", "max_steps", "keep_epochs", "val_bleu_max"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 0, got {v!r}")
        if self.vocab_max_size is not None and self.vocab_max_size < 5:
            raise ValueError(f"TrainConfig.vocab_max_size must be >= 5 (4 special tokens + words), got {self.vocab_max_size}")
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"TrainConfig.tokenizer must be one of {', '.join(TOKENIZERS)}, got {self.tokenizer!r}")
        if self.subword_type not in SUBWORD_TYPES:
            raise ValueError(f"TrainConfig.subword_type must be one of {', '.join(SUBWORD_TYPES)}, got {self.subword_type!r}")
        if not isinstance(self.subword_vocab_size, int) or not 16 <= self.subword_vocab_size <= 1_000_000:
            raise ValueError(f"TrainConfig.subword_vocab_size must be an integer from 16 to 1000000, got {self.subword_vocab_size!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"TrainConfig.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(f"TrainConfig.lr_decay must be in (0, 1] (1 = off), got {self.lr_decay}")
        if not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"TrainConfig.patience must be an integer >= 0 (0 = off), got {self.patience!r}")
        if self.select_by not in SELECT_BY:
            raise ValueError(f"TrainConfig.select_by must be one of {', '.join(SELECT_BY)}, got {self.select_by!r}")
        if self.select_by == "bleu" and not self.val_bleu_max:
            raise ValueError("TrainConfig.select_by='bleu' needs validation BLEU: set val_bleu_max > 0")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.clip < 0:
            raise ValueError(f"TrainConfig.clip must be >= 0 (0 = off), got {self.clip}")
        if self.val_file is None and not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"TrainConfig.val_fraction must be in (0, 1) when no val_file is given, got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return config_from_dict(cls, ModelConfig, d)


