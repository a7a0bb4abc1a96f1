"""Text <-> token ids: the tokenizer and vocabulary shared by training and the runtime.

Training imports this module too, so a bundle's `tokens.txt` and the runtime see text
exactly as training did. Word level: Unicode words and single punctuation marks.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import BundleError, InputError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)

_TOKEN_RE = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]", re.UNICODE)
_NO_SPACE_BEFORE = set(".,!?;:%)]}»”“\"'…")
_NO_SPACE_AFTER = set("([{„«“")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split text into words and punctuation marks (NFC, optionally lower-cased)."""
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = text.lower()
    return _TOKEN_RE.findall(text)


def detokenize(tokens: Iterable[str]) -> str:
    """Join tokens into readable text: no space before closing punctuation or after opening."""
    out: list[str] = []
    for tok in tokens:
        if out and not (tok in _NO_SPACE_BEFORE or out[-1] in _NO_SPACE_AFTER):
            out.append(" ")
        out.append(tok)
    return "".join(out)


# "a"/"an" go by the next word's first sound, which its first letter says except for these
_AN_BEFORE = ("hour", "honest", "honour", "honor", "heir", "herb")
_A_BEFORE = ("uni", "use", "usu", "uti", "ura", "uro", "eu", "ewe", "one", "once", "ubiq", "uk", "ufo")


def article_for(word: str) -> str:
    """ "an" when `word` starts with a vowel sound, else "a" (a letter rule with the usual
    exceptions: "an hour", "a unicorn", "a one-way street")."""
    w = word.lower()
    if w.startswith(_AN_BEFORE):
        return "an"
    if w.startswith(_A_BEFORE):
        return "a"
    if len(w) == 1 or (w.isupper() and len(w) <= 4):
        return "an" if w[0] in "aefhilmnorsx" else "a"  # letters said by name: "an x-ray", "an f"
    return "an" if w[:1] in ("a", "e", "i", "o", "u") else "a"


def agree_articles(words: list[str]) -> list[str]:
    """Each "a"/"an" made to agree with the word after it ("a apple" -> "an apple")."""
    out = list(words)
    for i in range(len(out) - 1):
        if out[i] in ("a", "an") and out[i + 1] not in ("a", "an", "the"):
            out[i] = article_for(out[i + 1])
    return out


@dataclass
class Vocab:
    """Token <-> id table; line number in tokens.txt is the id. Ids 0-3 are the specials."""

    tokens: list[str]

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}
        for i, special in enumerate(SPECIALS):
            if self.tokens[i : i + 1] != [special]:
                raise BundleError(
                    f"token file: line {i + 1} must be {special!r}; "
                    "the file is not an edge-s2s vocabulary, re-export the bundle"
                )

    pad_id = 0
    unk_id = 1
    bos_id = 2
    eos_id = 3

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, texts: Iterable[list[str]], min_count: int = 1, max_size: int | None = None) -> Vocab:
        """Most frequent tokens first (ties alphabetical, so the build is deterministic)."""
        counts = Counter(tok for toks in texts for tok in toks)
        ranked = sorted((t for t, c in counts.items() if c >= min_count and t not in SPECIALS),
                        key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + ranked)

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        path = Path(path)
        if not path.is_file():
            raise BundleError(f"token file {path} is missing: re-export the bundle or pass the right directory")
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError:
            raise BundleError(f"token file {path} is not UTF-8 text: re-export the bundle") from None
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) < len(SPECIALS):
            raise BundleError(f"token file {path} has {len(lines)} lines, fewer than the 4 special tokens: re-export the bundle")
        return cls(lines)

    def save(self, path: str | Path) -> None:
        bad = [t for t in self.tokens if "\n" in t or t == ""]
        if bad:
            raise ValueError(f"tokens cannot be empty or contain newlines: {bad[:3]}")
        Path(path).write_text("\n".join(self.tokens) + "\n", encoding="utf-8")

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.index.get(t, self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]


def encode_source(text: str, vocab: Vocab, lowercase: bool, max_length: int) -> list[int]:
    """Tokenize one source sentence and append the end token; clear error when unusable."""
    if not isinstance(text, str):
        raise InputError(f"expected text, got {type(text).__name__}")
    toks = tokenize(text, lowercase)
    if not toks:
        raise InputError("input is empty: give at least one word")
    if len(toks) + 1 > max_length:
        raise InputError(
            f"input has {len(toks)} tokens, more than this model's limit of {max_length - 1}: split it into shorter sentences"
        )
    return vocab.encode(toks) + [vocab.eos_id]


class WordText:
    """The word tokenizer with a vocabulary, behind the same interface as `subwords.SubwordText`."""

    def __init__(self, vocab: Vocab, lowercase: bool = True):
        self.vocab = vocab
        self.lowercase = lowercase

    def pieces(self, text: str) -> list[str]:
        return tokenize(text, self.lowercase)

    def ids(self, text: str) -> list[int]:
        return self.vocab.encode(self.pieces(text))

    def decode(self, ids: Iterable[int]) -> str:
        return detokenize(self.vocab.decode(i for i in ids if i >= len(SPECIALS) or i == Vocab.unk_id))

    def encode_source(self, text: str, max_length: int) -> list[int]:
        return encode_source(text, self.vocab, self.lowercase, max_length)

    def reference(self, text: str) -> str:
        """A reference as this tokenizer would print it (casing and spacing), for BLEU."""
        return detokenize(tokenize(text, self.lowercase))


GENERATION_UNITS = ("char", "word", "symbol")  # symbol: whitespace-separated tokens, taken as written


def split_units(text: str, unit: str, lowercase: bool = False) -> list[str]:
    """Text -> the tokens of a language model: characters, or words and punctuation.

    Training and the runtime's prompt encoding both call this, so a prompt is cut exactly
    as the training text was (NFC; newlines become spaces for characters).
    """
    if unit == "char":
        text = unicodedata.normalize("NFC", text)
        if lowercase:
            text = text.lower()
        return list(text.replace("\r\n", " ").replace("\n", " "))
    if unit == "word":
        return tokenize(text, lowercase)
    if unit == "symbol":  # the NTM tasks' "3a 07 <delim>": markers in brackets stay one token
        text = unicodedata.normalize("NFC", text)
        return (text.lower() if lowercase else text).split()
    raise ValueError(f"unknown text unit {unit!r}: use one of {', '.join(GENERATION_UNITS)}")


def join_units(tokens: Iterable[str], unit: str) -> str:
    """The inverse of `split_units` (up to spacing around punctuation for words)."""
    if unit == "char":
        return "".join(tokens)
    if unit == "symbol":
        return " ".join(tokens)
    return detokenize(tokens)
