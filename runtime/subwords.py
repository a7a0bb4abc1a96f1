"""Text <-> ids through a SentencePiece model: the subword tokenizer of translation bundles.

Word vocabularies leave rare words as `<unk>` (8.6% of the de-en test tokens); subwords
(Sennrich et al. 2016; Kudo 2018, the unigram model) spell any word from pieces, so output has
no `<unk>`. Training (train/translate/subword_train.py) writes the model with ids 0-3 fixed to
the four specials of `runtime.text`, and the bundle's tokens.txt lists the pieces in id order,
so `Vocab` and the SentencePiece model give identical ids; `SubwordText` checks that on load.

The model file is untrusted like the rest of a bundle: it is read as bytes from inside the
bundle (its sha256 is in manifest.json) and handed to SentencePiece as a protobuf, which holds
data only; anything SentencePiece refuses becomes one `BundleError` line.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from .errors import BundleError, InputError
from .schema import bundle_path
from .text import SPECIALS, Vocab, WordText

SENTENCEPIECE = "sentencepiece"
TOKENIZERS = ("word", SENTENCEPIECE)  # preprocessing.tokenizer in manifest.json
FIX = "re-export the bundle with `edge-s2s export`"


def _processor():
    try:
        import sentencepiece
    except ImportError:  # pragma: no cover - a dependency of the package
        raise BundleError("this bundle uses a SentencePiece tokenizer: pip install sentencepiece") from None
    return sentencepiece.SentencePieceProcessor()


class SubwordText:
    """A SentencePiece model checked against the bundle's vocabulary (same pieces, same ids)."""

    def __init__(self, model: bytes, vocab: Vocab, lowercase: bool = False, source: str = "sentencepiece model"):
        sp = _processor()
        try:
            sp.LoadFromSerializedProto(model)
        except (RuntimeError, OSError, ValueError, TypeError) as e:  # SentencePiece's own words for a bad proto
            raise BundleError(f"{source} is not a SentencePiece model ({str(e).splitlines()[0][:80]}): {FIX}") from None
        n = sp.GetPieceSize()
        if n != len(vocab):
            raise BundleError(f"{source} has {n} pieces but the vocabulary has {len(vocab)} tokens: {FIX}")
        specials = (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id())
        if specials != (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id):
            raise BundleError(f"{source} gives the specials ids {specials}, not (0, 1, 2, 3): {FIX}")
        for i in range(len(SPECIALS), n):
            if sp.IdToPiece(i) != vocab.tokens[i]:
                raise BundleError(f"{source}: piece {i} is {sp.IdToPiece(i)!r} but the vocabulary says "
                                  f"{vocab.tokens[i]!r}: {FIX}")
        self._sp = sp
        self.vocab = vocab
        self.lowercase = lowercase

    @classmethod
    def load(cls, path: str | Path, vocab: Vocab, lowercase: bool = False) -> SubwordText:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BundleError(f"cannot read {path.name} ({e.strerror}): {FIX}") from None
        return cls(data, vocab, lowercase, path.name)

    @staticmethod
    def normalize_text(text: str, lowercase: bool) -> str:
        """What both training and the runtime do to text before SentencePiece sees it."""
        text = unicodedata.normalize("NFC", text)
        return text.lower() if lowercase else text

    def normalize(self, text: str) -> str:
        return self.normalize_text(text, self.lowercase)

    def reference(self, text: str) -> str:
        """A reference for BLEU: only the model's own normalisation (NFC, lower case if it was trained so)."""
        return self.normalize(text).strip()

    def pieces(self, text: str) -> list[str]:
        """The pieces of `text` (what training saw, as tokens.txt spells them)."""
        return self._sp.EncodeAsPieces(self.normalize(text))

    def ids(self, text: str) -> list[int]:
        return self._sp.EncodeAsIds(self.normalize(text))

    def decode(self, ids: list[int]) -> str:
        """Ids -> text; the specials are dropped (an `<unk>` piece prints as ⁇, SentencePiece's mark)."""
        return self._sp.DecodeIds([int(i) for i in ids if i >= len(SPECIALS) or i == Vocab.unk_id])

    def encode_source(self, text: str, max_length: int) -> list[int]:
        """One source sentence's ids with the end token; the same checks as the word tokenizer."""
        if not isinstance(text, str):
            raise InputError(f"expected text, got {type(text).__name__}")
        ids = self.ids(text)
        if not ids:
            raise InputError("input is empty: give at least one word")
        if len(ids) + 1 > max_length:
            raise InputError(f"input has {len(ids)} subword tokens, more than this model's limit of {max_length - 1}: "
                             "split it into shorter sentences")
        return ids + [self.vocab.eos_id]


def bundle_text(directory: str | Path, preprocessing: dict, files: dict[str, str], vocab: Vocab):
    """The tokenizer a text bundle declares: `WordText`, or `SubwordText` from the model file that
    `preprocessing.sentencepiece_model` names (which must be one of the bundle's checksummed files)."""
    kind = preprocessing.get("tokenizer", "word")
    lowercase = preprocessing.get("lowercase", True)
    if not isinstance(lowercase, bool):
        raise BundleError(f"manifest.json: preprocessing.lowercase must be true or false, got {lowercase!r}: {FIX}")
    if kind == "word":
        return WordText(vocab, lowercase)
    if kind != SENTENCEPIECE:
        raise BundleError(f"manifest.json: preprocessing.tokenizer must be one of {', '.join(TOKENIZERS)}, got "
                          f"{str(kind)[:40]!r}: {FIX} (or update edge-s2s)")
    name = preprocessing.get("sentencepiece_model")
    if not isinstance(name, str) or name not in files:
        raise BundleError(f"manifest.json: preprocessing.sentencepiece_model must name one of the bundle's files "
                          f"listed with its sha256, got {str(name)[:60]!r}: {FIX}")
    return SubwordText.load(bundle_path(Path(directory), name, "preprocessing.sentencepiece_model"), vocab, lowercase)
