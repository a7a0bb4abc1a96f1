"""Learn the SentencePiece model of a translation run, and read back a run's tokenizer.

One model is shared by both languages (German and English share most of their alphabet, names
and numbers), learnt from the training split only. Ids 0-3 are fixed to the runtime's specials,
so `runtime.text.Vocab` built from the pieces in id order and SentencePiece give the same ids,
and the bundle carries the model file as it is (runtime/subwords.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ...runtime.errors import BundleError
from ...runtime.subwords import SENTENCEPIECE, SubwordText
from ...runtime.text import BOS, EOS, PAD, UNK, Vocab, WordText
from ..core.errors import DataError, RunError

SUBWORD_MODEL_FILE = "sentencepiece.model"  # in the run directory and in the bundle


@dataclass
class SubwordOptions:
    vocab_size: int = 8000
    model_type: str = "unigram"
    character_coverage: float = 1.0  # German needs all its letters; rare symbols still fall back to <unk>
    max_sentences: int = 2_000_000  # sentences SentencePiece samples to learn from


def learn_subwords(sentences: Iterable[str], opts: SubwordOptions, lowercase: bool = False) -> bytes:
    """Train a SentencePiece model on `sentences`; returns the serialized model."""
    import sentencepiece as spm

    # the runtime normalises exactly so before encoding
    norm = [s for s in (SubwordText.normalize_text(x, lowercase) for x in sentences) if s.strip()]
    if not norm:
        raise DataError("no training text to learn subwords from")
    out = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(norm), model_writer=out, vocab_size=opts.vocab_size, model_type=opts.model_type,
            character_coverage=opts.character_coverage, input_sentence_size=opts.max_sentences,
            shuffle_input_sentence=True, pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece=PAD, unk_piece=UNK,
            bos_piece=BOS, eos_piece=EOS, hard_vocab_limit=False, num_threads=2, minloglevel=2,
            max_sentence_length=8192,
        )
    except RuntimeError as e:
        raise DataError(f"SentencePiece could not learn a vocabulary of {opts.vocab_size} ({str(e).splitlines()[0]}): "
                        "use a smaller --subword-vocab-size or more training text") from None
    return out.getvalue()


def vocab_of(model: bytes) -> Vocab:
    """The pieces of a SentencePiece model in id order: the run's and the bundle's tokens.txt."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(model)
    return Vocab([sp.IdToPiece(i) for i in range(sp.GetPieceSize())])


def run_text(run: Path, tokenizer: str, vocab: Vocab, lowercase: bool) -> WordText | SubwordText:
    """The tokenizer a run was trained with (its SentencePiece model beside tokens.txt, or words)."""
    if tokenizer != SENTENCEPIECE:
        return WordText(vocab, lowercase)
    path = run / SUBWORD_MODEL_FILE
    if not path.is_file():
        raise RunError(f"{path} is missing: the run was trained with subwords and needs its SentencePiece model")
    try:
        return SubwordText.load(path, vocab, lowercase)
    except BundleError as e:
        raise RunError(f"{run}: {e}") from None
