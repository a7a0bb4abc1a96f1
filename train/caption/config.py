"""Captioner model and training configuration (dataclasses, validated on construction).

Both go to the run directory's `config.json`; `--resume` and the exporter read them back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.config import config_from_dict
from ..methods.exposure import INPUT_FEEDS, FeedConfig, check_feed, feed_from

CAPTION_ATTENTIONS = ("soft", "none")
TAU_MODES = ("learned", "fixed")


@dataclass
class CaptionModelConfig:
    """Show, Attend and Tell (Xu et al. 2015) over EfficientNet-Lite0's 7x7 feature map.

    attention: "soft"  the decoder attends over the 49 regions at every word, with the
                       gating scalar beta = sigmoid(f_beta(h)) on the context;
               "none"  the notes' first caption model: the mean region vector is fed at
                       every step (no attention), the baseline.
    region_dim: the 1280-wide CNN features are projected to this width once, in the
                encoder graph (keeps the step graph small).
    doubly_stochastic: weight lambda of sum_i (tau - sum_t alpha_t,i)^2 (0 = off);
    tau: "learned" (a parameter, initialised at tau_init) or "fixed" (the paper's tau = 1).
    finetune_cnn: train the CNN too (off by default: frozen ImageNet features, cached).
    block_unk: rare training words are <unk>; the decoder learns to say it, but a caption
               "a <unk>." helps nobody, so decoding renormalises over the other words.
    input_feed: "token" (the previous word's embedding) or "distribution" (the notes' "better
                idea?": the expected embedding under the previous softmax, `state.prev_dist`).
    labels: K > 0 adds the CNN's ImageNet classifier: its top-K plain label names
            (train/caption/label_names.py) become K more slots the decoder attends over beside
            the regions, and a pointer-generator gate lets it copy a slot's name into the caption
            (novel objects: "motorcycle" need not occur in any training caption). 0 = off.
    label_inject: training only: the probability that a caption's label name the classifier did
            not put in the top K takes a slot (teaches copying on the little data there is).
    copy_names: a slot's name is never generated, only copied (training and the exported step):
            the gate must learn to copy exactly the words the labels carry, so on photos of things
            clip art never shows it copies them instead of writing a clip-art word (the transfer of
            Hendricks et al. 2016 and Lu et al. 2018, where detector words come from the detector).
    no_end_words: the exported step forbids the end token after "a", "the", "of", ... and as the
            first word (train/caption/caption_text.NO_END_WORDS): a caption never stops mid-phrase.
    pointer_prior: a decoding prior the recipe sets at export (like no_end_words; set for training
            it would apply there too): beta > 0 adds beta * log p_k, the classifier's probability of
            slot k's name, to the pointer's scores, so the copy leans toward the names the classifier
            is sure of. On clip art the classifier's top name is often wrong and the pointer learnt to
            pick by what fits the caption; on photos the top name is right far more often. A product
            of the two experts, chosen on development photos (scripts/train_default_captioner.py).
    """

    emb_dim: int = 256
    dec_hidden: int = 512
    region_dim: int = 512
    att_dim: int = 256
    attention: str = "soft"
    dropout: float = 0.3
    doubly_stochastic: float = 0.0
    tau: str = "learned"
    tau_init: float = 1.0
    finetune_cnn: bool = False
    cnn: str = "efficientnet-lite0"
    block_unk: bool = True  # decoding (and the exported step) never emits <unk>
    input_feed: str = "token"
    labels: int = 0
    label_inject: float = 0.0
    copy_names: bool = False
    no_end_words: bool = False
    pointer_prior: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.labels, bool) or not isinstance(self.labels, int) or not 0 <= self.labels <= 32:
            raise ValueError(f"CaptionModelConfig.labels must be an integer from 0 to 32, got {self.labels!r}")
        if not 0.0 <= self.label_inject <= 1.0:
            raise ValueError(f"CaptionModelConfig.label_inject must be in [0, 1], got {self.label_inject}")
        if not math.isfinite(self.pointer_prior) or not 0.0 <= self.pointer_prior <= 20.0:
            raise ValueError(f"CaptionModelConfig.pointer_prior must be in [0, 20], got {self.pointer_prior}")
        if self.pointer_prior and not self.labels:
            raise ValueError("pointer_prior weighs the label slots' names: set labels > 0")
        if self.copy_names and not self.labels:
            raise ValueError("copy_names needs label slots to copy from: set labels > 0")
        if self.labels and self.attention != "soft":
            raise ValueError("label slots are attended over: labels > 0 needs attention='soft'")
        if self.labels and self.input_feed != "token":
            raise ValueError("label slots and input_feed='distribution' do not combine: use input_feed='token'")
        if self.input_feed not in INPUT_FEEDS:
            raise ValueError(f"CaptionModelConfig.input_feed must be one of {', '.join(INPUT_FEEDS)}, "
                             f"got {self.input_feed!r}")
        for name in ("emb_dim", "dec_hidden", "region_dim", "att_dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"CaptionModelConfig.{name} must be a positive integer, got {v!r}")
        if self.attention not in CAPTION_ATTENTIONS:
            raise ValueError(f"CaptionModelConfig.attention must be one of {', '.join(CAPTION_ATTENTIONS)}, "
                             f"got {self.attention!r}")
        if self.tau not in TAU_MODES:
            raise ValueError(f"CaptionModelConfig.tau must be 'learned' or 'fixed', got {self.tau!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CaptionModelConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.doubly_stochastic < 0:
            raise ValueError(f"CaptionModelConfig.doubly_stochastic must be >= 0, got {self.doubly_stochastic}")
        if self.doubly_stochastic and self.attention == "none":
            raise ValueError("the doubly stochastic regulariser needs attention='soft' (there is no attention to regularise)")
        if self.cnn != "efficientnet-lite0":
            raise ValueError(f"CaptionModelConfig.cnn must be 'efficientnet-lite0', got {self.cnn!r}")


@dataclass
class CaptionTrainConfig:
    """One captioner training run.

    captions: a Karpathy-split JSON (splits inside) or a COCO caption JSON (then
    `val_captions` is the validation file, or `val_fraction` of the images is held out).
    feed: what the decoder reads while training (train/methods/exposure.py).
    """

    captions: str = ""
    images: str = ""
    val_captions: str | None = None
    out_dir: str = "runs/caption"
    model: CaptionModelConfig = field(default_factory=CaptionModelConfig)
    epochs: int = 20
    batch_size: int = 32
    lr: float = 4e-4
    clip: float = 5.0
    seed: int = 1
    val_fraction: float = 0.1
    max_caption_length: int = 24  # words, end token not counted; longer captions are cut
    vocab_min_count: int = 2
    checkpoint_every: int = 0
    max_steps: int = 0
    val_max: int = 500  # validation images captioned (greedy) for the metrics each epoch (0 = skip)
    device: str = "cpu"
    lowercase: bool = True
    text: str = "raw"  # "clean": caption_text.clean_caption targets (lower case, no punctuation); "raw": tokenize
    image_size: int = 224
    resize: str = "crop"
    feed: FeedConfig = field(default_factory=FeedConfig)

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = CaptionModelConfig(**self.model)
        self.feed = feed_from(self.feed)
        check_feed(self.feed, self.model.input_feed)
        for name in ("epochs", "batch_size", "max_caption_length", "vocab_min_count", "image_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"CaptionTrainConfig.{name} must be a positive integer, got {v!r}")
        for name in ("checkpoint_every", "max_steps", "val_max"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"CaptionTrainConfig.{name} must be an integer >= 0, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"CaptionTrainConfig.lr must be > 0, got {self.lr}")
        if self.clip < 0:
            raise ValueError(f"CaptionTrainConfig.clip must be >= 0 (0 = off), got {self.clip}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"CaptionTrainConfig.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.resize not in ("crop", "squash"):
            raise ValueError(f"CaptionTrainConfig.resize must be 'crop' or 'squash', got {self.resize!r}")
        if self.text not in ("raw", "clean"):
            raise ValueError(f"CaptionTrainConfig.text must be 'raw' or 'clean', got {self.text!r}")
        if self.image_size != 224:
            raise ValueError("EfficientNet-Lite0 is built for 224x224 inputs: image_size must be 224")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaptionTrainConfig:
        return config_from_dict(cls, CaptionModelConfig, d)
