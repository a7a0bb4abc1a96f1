"""Speech training: a Listen-Attend-Spell speller on spoken digit strings (FSDD) or Tux Paint phrases,
teacher forcing, optional SpecAugment, atomic checkpoints and bit-for-bit `--resume` through the shared
epoch loop.

Data: `data_dir/{train,val,test}/manifest.jsonl` (train/speech/data.py's layout). When the train
manifest is missing, the sets are built first: corpus "fsdd" (the default) from FSDD (`fsdd`,
n_train / n_val / n_test, data_seed; the digit vocabulary), corpus "tuxpaint" from one language's
recordings in the stamps folder (`stamps`, `lang`, data_seed; held-out utterances, a character
vocabulary from the training transcripts, so a val/test character it lacks reads as <unk>). An
existing set is reused as it is. The test split's transcripts are read only for their length
(max_length 0 = fit the longest); its audio belongs to scripts/speech_table.py.

Features are the runtime's own log-mel code (`features_from_file`), computed once per split
and cached next to the manifest (`features-<hash of the recipe>.npz`), so later runs and
resumes skip the audio.

Run directory (cfg.out_dir)::

    config.json     the SpeechTrainConfig (task "transcribe"), vocabulary size, data sizes
    tokens.txt      the character vocabulary ("0".."9" and space for FSDD)
    last.pt / best.pt, metrics.jsonl   as every other task (best = lowest validation CER)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...runtime.media.features import FeatureConfig
from ...runtime.search import Greedy
from ...runtime.text import SPECIALS, Vocab
from ..caption.tuxpaint import STAMPS_DIR
from ..core.checkpoint import BEST, LAST, load_checkpoint
from ..core.config import config_from_dict
from ..core.data_roots import shared_data
from ..core.epochs import run_epochs
from ..core.errors import DataError, RunError
from ..core.run_dir import CONFIG_FILE, TOKENS_FILE, load_run_config, resumed_config, seed_everything, write_json
from .config import SpeechModelConfig
from .data import MANIFEST, TEST_SPEAKERS, build_fsdd, build_tuxpaint, read_manifest
from .features import SpecAugment, batch_features, features_from_file
from .model import Speller

TASK = "transcribe"
CHARS = list("0123456789") + [" "]
CORPORA = ("fsdd", "tuxpaint")
MAX_LENGTH_SLACK = 8  # characters beyond the longest transcript when max_length is 0 (auto)


def digit_vocab() -> Vocab:
    """The character vocabulary of digit strings: the specials, "0".."9", space."""
    return Vocab(list(SPECIALS) + CHARS)


SILENCE_FLOOR_DB = 60.0
"""New runs' FeatureConfig.floor_db: mel energies more than 60 dB below the utterance's loudest are
clamped to that level. Measured on 100 FSDD recordings (8 kHz, 40 bins): in the loudest half of
the frames 1.0% of the mel energies lie further than 60 dB below the peak (mostly the four filters
under 200 Hz), while the quietest 10% of frames lie 29-59 dB below it (median 44 dB); so speech
keeps its numbers and digital zeros, a DC offset or a faint hiss land a few dB under the pauses
training saw instead of ~200 dB. On a tone-string Speller trained with recorded-style noise pauses
(-45 to -65 dBFS), 60 dB kept its accuracy on pauses of zeros (0.95 -> 0.99), Whisper's 80 dB did
not (0.98 -> 0.77), nor did today's recipe (0.83 -> 0.24)."""


def default_features() -> FeatureConfig:
    """The recipe for FSDD's 8 kHz audio: 32 ms FFT, 40 mel bins, per-utterance normalisation
    (removes the microphone's and speaker's level, which matters for an unseen speaker), and
    silence made one input: each frame's DC removed and a floor SILENCE_FLOOR_DB under the peak
    (runtime/media/features.py explains both; bundles exported before them keep neither)."""
    return FeatureConfig(sample_rate=8000, n_fft=256, n_mels=40, normalize=True, remove_dc=True,
                         floor_db=SILENCE_FLOOR_DB)


def tuxpaint_features() -> FeatureConfig:
    """The recipe for Tux Paint's 44.1/48 kHz recordings: resampled to 16 kHz, 25 ms / 10 ms frames,
    80 mel bins, per-utterance normalisation (speech has little energy above 8 kHz), DC removal and
    the silence floor as `default_features`."""
    return FeatureConfig(sample_rate=16000, n_fft=512, n_mels=80, normalize=True, remove_dc=True,
                         floor_db=SILENCE_FLOOR_DB)


def corpus_features(corpus: str) -> FeatureConfig:
    """The default feature recipe of a corpus ("fsdd" or "tuxpaint")."""
    return tuxpaint_features() if corpus == "tuxpaint" else default_features()


def char_vocab(texts: list[str]) -> Vocab:
    """A character vocabulary from training transcripts (most frequent first, ties alphabetical)."""
    return Vocab.build([list(t) for t in texts])


@dataclass
class SpeechTrainConfig:
    """One speech training run (see the module doc for the data layout)."""

    data_dir: str = "data/fsdd-digits"
    fsdd: str = field(default_factory=lambda: str(shared_data("fsdd")))  # $EDGE_S2S_DATA or ../shared/data
    n_train: int = 2000
    n_val: int = 200
    n_test: int = 300
    data_seed: int = 13
    corpus: str = "fsdd"  # "fsdd" (digit strings) or "tuxpaint" (one language's phrases)
    lang: str = "fr"  # with corpus "tuxpaint": the recordings' language (*_desc_<lang>.ogg)
    stamps: str = str(STAMPS_DIR)  # with corpus "tuxpaint": Tux Paint's stamps folder
    out_dir: str = "runs/speech"
    model: SpeechModelConfig = field(default_factory=lambda: SpeechModelConfig(n_mels=40, listener_hidden=128,
                                                                              dec_hidden=128))
    features: dict[str, Any] = field(default_factory=lambda: default_features().to_dict())
    spec_augment: bool = False
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    clip: float = 5.0
    seed: int = 1
    checkpoint_every: int = 0
    max_steps: int = 0
    val_max: int = 200  # validation utterances decoded (greedy) for CER each epoch (0 = loss only)
    max_length: int = 24  # characters decoded at most (10 digits and 9 spaces fit); 0 = fit the longest transcript
    device: str = "cpu"
    init_from: str = ""  # fine-tuning: start from this run's (or .pt checkpoint's) weights, not at random

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = SpeechModelConfig.from_dict(self.model)
        if isinstance(self.features, FeatureConfig):
            self.features = self.features.to_dict()
        fc = FeatureConfig.from_dict(self.features)
        if fc.n_mels != self.model.n_mels:
            raise ValueError(f"the features have n_mels={fc.n_mels} but the model reads {self.model.n_mels}: "
                             "make them equal")
        if self.corpus not in CORPORA:
            raise ValueError(f"unknown speech corpus {self.corpus!r}: use {' or '.join(CORPORA)}")
        for name in ("epochs", "batch_size", "n_train", "n_val"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"SpeechTrainConfig.{name} must be a positive integer, got {v!r}")
        for name in ("checkpoint_every", "max_steps", "val_max", "n_test", "max_length"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"SpeechTrainConfig.{name} must be an integer >= 0, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"SpeechTrainConfig.lr must be > 0, got {self.lr}")
        if self.clip < 0:
            raise ValueError(f"SpeechTrainConfig.clip must be >= 0 (0 = off), got {self.clip}")

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.features)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeechTrainConfig:
        return config_from_dict(cls, SpeechModelConfig, d)


# ---------------------------------------------------------------- data


def ensure_speech_sets(cfg: SpeechTrainConfig) -> dict[str, Path]:
    """split -> manifest under cfg.data_dir, building them from cfg.corpus when the train manifest is missing."""
    root = Path(cfg.data_dir)
    splits = {s: root / s / MANIFEST for s in ("train", "val", "test")}
    if not splits["train"].is_file():
        if cfg.corpus == "tuxpaint":
            build_tuxpaint(cfg.stamps, root, cfg.lang, seed=cfg.data_seed)
        else:
            build_fsdd(cfg.fsdd, root, cfg.n_train, cfg.n_val, cfg.n_test, seed=cfg.data_seed)
    if not splits["val"].is_file():
        raise DataError(f"{splits['val']} is missing: rebuild the data set (remove {root}) or give another --data-dir")
    return splits


ensure_digit_sets = ensure_speech_sets  # the name from when FSDD was the only corpus


def data_info(cfg: SpeechTrainConfig) -> dict[str, Any]:
    """What the model was trained and tested on, for the bundle manifest's "model"."""
    if cfg.corpus == "tuxpaint":
        return {"data": f"tuxpaint-stamps-default {cfg.lang} phrases", "lang": cfg.lang,
                "held_out": "utterances (a sentence is never in two splits)"}
    return {"data": "fsdd digit strings", "test_speakers": list(TEST_SPEAKERS)}


def longest_transcript(splits: dict[str, Path]) -> int:
    """Characters in the longest transcript of any split (only the text is read)."""
    return max((len(r["transcript"]) for p in splits.values() if p.is_file() for r in read_manifest(p)), default=0)


def _recipe_hash(features: FeatureConfig) -> str:
    return hashlib.sha1(json.dumps(features.to_dict(), sort_keys=True).encode()).hexdigest()[:10]


def cached_features(manifest: str | Path, features: FeatureConfig) -> tuple[list[np.ndarray], list[str]]:
    """(frames [T_i, n_mels] per utterance, transcripts) of a manifest, cached beside it per recipe."""
    manifest = Path(manifest)
    rows = read_manifest(manifest)
    cache = manifest.parent / f"features-{_recipe_hash(features)}.npz"
    texts = [r["transcript"] for r in rows]
    if cache.is_file():
        with np.load(cache) as z:
            if int(z["count"]) == len(rows):
                frames, offsets = z["frames"], z["offsets"]
                return [frames[offsets[i] : offsets[i + 1]] for i in range(len(rows))], texts
    feats = [features_from_file(r["audio"], features) for r in rows]
    offsets = np.cumsum([0] + [f.shape[0] for f in feats]).astype(np.int64)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez(tmp, frames=np.concatenate(feats), offsets=offsets, count=np.int64(len(rows)))
    tmp.replace(cache)
    return feats, texts


def text_ids(text: str, vocab: Vocab) -> list[int]:
    return vocab.encode(list(text))


def collate(feats: list[np.ndarray], ids: list[list[int]], vocab: Vocab
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(frames [B, T, F], lengths [B], tgt_in = <s> + ids, tgt_out = ids + </s>; 0-padded)."""
    x, lengths = batch_features(feats)
    B, T = len(ids), max(len(i) for i in ids) + 1
    tgt_in = torch.zeros(B, T, dtype=torch.long)
    tgt_out = torch.zeros(B, T, dtype=torch.long)
    for b, t in enumerate(ids):
        tgt_in[b, : len(t) + 1] = torch.tensor([vocab.bos_id] + t)
        tgt_out[b, : len(t) + 1] = torch.tensor(t + [vocab.eos_id])
    return torch.from_numpy(x), torch.from_numpy(lengths), tgt_in, tgt_out


# ---------------------------------------------------------------- evaluation


def char_error_rate(hyps: list[str], refs: list[str]) -> float:
    """Character edit distance summed over utterances / reference characters (jiwer's CER definition)."""
    errors, total = 0, 0
    for h, r in zip(hyps, refs):
        prev = list(range(len(h) + 1))
        for i, rc in enumerate(r, 1):
            cur = [i] + [0] * len(h)
            for j, hc in enumerate(h, 1):
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rc != hc))
            prev = cur
        errors += prev[-1]
        total += len(r)
    return errors / max(total, 1)


@torch.no_grad()
def torch_transcribe(model: Speller, feats: list[np.ndarray], vocab: Vocab, max_length: int, search=Greedy(),
                     batch_size: int = 32) -> list[str]:
    """Transcripts from the PyTorch model through the runtime's reference loop (what the bundle will do)."""
    from ...runtime.reference_loop import decode
    from ..core.torch_step import decode_manifest, torch_step_fn

    was = model.training
    model.eval()
    try:
        manifest = decode_manifest(model, max_length)
        step = torch_step_fn(model)
        names = model.encoder_output_names()
        out: list[str] = []
        for s in range(0, len(feats), batch_size):
            x, lengths = batch_features(feats[s : s + batch_size])
            enc = model.encode(torch.from_numpy(x), torch.from_numpy(lengths))
            for hyps in decode(manifest, {n: enc[n].numpy() for n in names}, step, search, max_length=max_length):
                out.append("".join(vocab.decode(hyps[0].ids)) if hyps else "")
        return out
    finally:
        model.train(was)


@torch.no_grad()
def validation_loss(model: Speller, feats: list[np.ndarray], ids: list[list[int]], vocab: Vocab,
                    batch_size: int) -> float:
    was = model.training
    model.eval()
    total, n = 0.0, 0
    for s in range(0, len(feats), batch_size):
        x, lengths, tin, tout = collate(feats[s : s + batch_size], ids[s : s + batch_size], vocab)
        loss, k = model.loss(x, lengths, tin, tout)
        total += float(loss) * k
        n += k
    model.train(was)
    return total / max(n, 1)


# ---------------------------------------------------------------- training


def load_speech_run_config(run_dir: str | Path) -> SpeechTrainConfig:
    return load_run_config(run_dir, SpeechTrainConfig, TASK)


def initial_weights(cfg: SpeechTrainConfig, vocab: Vocab) -> dict[str, torch.Tensor]:
    """The weights a fine-tuning run starts from (cfg.init_from: a speech run directory, whose best.pt is
    taken, or a checkpoint file), checked to fit: same task, model shape, features and vocabulary.
    Only the weights are taken: the optimizer, step count and schedule start afresh."""
    src = Path(cfg.init_from)
    path = src / BEST if src.is_dir() else src
    ck = load_checkpoint(path)
    fix = "fine-tune from a speech run trained with the same model and features, or drop init_from"
    if ck.get("task") != TASK:
        raise RunError(f"init_from {path} is a {ck.get('task')!r} checkpoint, not a speech one: {fix}")
    if ck.get("model_config") != cfg.model.to_dict():
        raise RunError(f"init_from {path} has model {ck.get('model_config')}, this run {cfg.model.to_dict()}: {fix}")
    if ck.get("features") != cfg.feature_config.to_dict():
        raise RunError(f"init_from {path} was trained on other features ({ck.get('features')}): {fix}")
    tokens = src / TOKENS_FILE if src.is_dir() else path.parent / TOKENS_FILE
    if ck.get("vocab_size") != len(vocab) or (tokens.is_file() and Vocab.load(tokens).tokens != vocab.tokens):
        raise RunError(f"init_from {path} has another vocabulary ({ck.get('vocab_size')} tokens, this run "
                       f"{len(vocab)}): {fix}")
    return ck["model"]


def train_speech(cfg: SpeechTrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a speller; returns the run directory.

    resume=True continues from `out_dir/last.pt` with the saved configuration; only
    `epochs` and `max_steps` are taken from `cfg`.
    """
    run = Path(cfg.out_dir)
    last = run / LAST
    if resume:
        if not last.is_file():
            raise RunError(f"cannot resume: {last} does not exist (start the run without --resume)")
        cfg = resumed_config(cfg, SpeechTrainConfig, TASK)
        vocab = Vocab.load(run / TOKENS_FILE)
    elif last.is_file():
        raise RunError(f"{run} already holds a training run ({LAST}): resume it, or choose another output directory")
    else:
        vocab = digit_vocab() if cfg.corpus == "fsdd" else None  # tuxpaint: from the training transcripts
    splits = ensure_speech_sets(cfg)
    if cfg.max_length == 0:
        cfg = replace(cfg, max_length=longest_transcript(splits) + MAX_LENGTH_SLACK)
    fc = cfg.feature_config
    train_feats, train_texts = cached_features(splits["train"], fc)
    val_feats, val_texts = cached_features(splits["val"], fc)
    if not train_feats:
        raise DataError(f"{splits['train']} holds no utterances: rebuild the data set with n_train >= 1")
    if vocab is None:
        vocab = char_vocab(train_texts)
    bad = sorted({c for t in train_texts + val_texts for c in t if c not in vocab.index})
    if bad and cfg.corpus == "fsdd":
        raise DataError(f"transcripts in {cfg.data_dir} use characters {bad} outside the digit vocabulary: "
                        "this trainer is for digit strings (build them with build_fsdd)")
    train_ids = [text_ids(t, vocab) for t in train_texts]
    val_ids = [text_ids(t, vocab) for t in val_texts]
    if not resume:
        run.mkdir(parents=True, exist_ok=True)
        vocab.save(run / TOKENS_FILE)
        write_json(run / CONFIG_FILE, {"train": cfg.to_dict(), "vocab_size": len(vocab), "task": TASK,
                                        "utterances": {"train": len(train_feats), "val": len(val_feats)}})

    device = torch.device(cfg.device)
    seed_everything(cfg.seed)
    model = Speller(cfg.model, len(vocab)).to(device)
    if cfg.init_from and not resume:  # a resumed run has its own weights in last.pt
        model.load_state_dict(initial_weights(cfg, vocab))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    augment = SpecAugment() if cfg.spec_augment else None

    def train_step(indices: list[int], step: int):
        feats = [train_feats[j] for j in indices]
        if augment is not None:  # seeded by the batch, so a resumed run masks exactly as the first would have
            rng = np.random.default_rng([cfg.seed, *indices[:4], len(indices)])
            feats = [augment(f, rng) for f in feats]
        x, lengths, tin, tout = collate(feats, [train_ids[j] for j in indices], vocab)
        loss, n = model.loss(x.to(device), lengths.to(device), tin.to(device), tout.to(device))
        return loss, n, float(loss.detach())

    def evaluate():
        val_loss = validation_loss(model, val_feats, val_ids, vocab, cfg.batch_size)
        metrics: dict[str, float] = {"val_loss": val_loss}
        shown = f", val loss {val_loss:.4f}"
        if cfg.val_max:
            n = min(cfg.val_max, len(val_feats))
            hyps = torch_transcribe(model, val_feats[:n], vocab, cfg.max_length)
            metrics["val_cer"] = char_error_rate(hyps, val_texts[:n])
            shown += f", val CER {metrics['val_cer']:.3f}"
        return metrics, -metrics.get("val_cer", val_loss), shown  # best = lowest CER (or loss)

    return run_epochs(run, cfg, model, opt, len(train_feats), [f.shape[0] for f in train_feats], train_step,
                      evaluate, {"vocab_size": len(vocab), "task": TASK, "features": fc.to_dict()}, resume, progress)
