"""Caption targets as captioning papers clean them: lower case, no punctuation, label names as one word.

The old targets were `runtime.text.tokenize` of the raw text, so quotes, commas and full stops
were words the decoder learned to emit ("a big,." "a" of" apple."). Here a caption becomes
lower-case words of letters, digits and inner hyphens only (Karpathy's COCO preprocessing, which
pycocoevalcap's PTB tokenizer also applies to references); an apostrophe joins its word ("dog's"
-> "dogs"), everything else separates words. A two-word ImageNet label name ("fire truck") that
occurs in a caption is merged into one token, so copying that label (train/caption/model.py)
writes the whole name in one step.

The decoder must also not stop on a word that needs a continuation: `NO_END_WORDS` are the
function words after which the exported step forbids the end token
(model.CaptionModel.decode_logprobs). A colour or size word with no noun after it ("a red": no
clip-art training caption ends on one, yet a model can stop there on a photo it does not know) is
completed at the runtime instead, with the image's most probable label name ("a red bird";
`MODIFIER_WORDS`, listed in the bundle as model.needs_noun): forbidding the end there made the
decoder run on into "a red of a red and ...".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

NO_END_WORDS = frozenset(
    "a an the and or of with without in on at to from by for into onto over under near behind between "
    "its his her their some is are".split())
# colours and sizes, said before a noun ("orange" is left out: it is also the fruit)
MODIFIER_WORDS = frozenset(
    "red yellow green blue purple violet pink brown black white grey gray silver gold golden beige "
    "colorful colourful big small large little tiny huge".split())
_LINKING = frozenset({"is", "are"})  # "the car is red" ends well
_APOSTROPHES = re.compile(r"['\u2019\u2018`]")
_NOT_WORD = re.compile(r"[^a-z0-9-]+")
_EDGE_HYPHENS = re.compile(r"(?:^-+|-+$)")
WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def caption_words(text: str) -> list[str]:
    """Lower-case words of `text`: letters, digits and inner hyphens; nothing else survives."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _APOSTROPHES.sub("", text)
    words = []
    for w in _NOT_WORD.sub(" ", text).split():
        w = _EDGE_HYPHENS.sub("", re.sub(r"-{2,}", "-", w))
        if w:
            words.append(w)
    return words


def merge_phrases(words: list[str], phrases: Iterable[str]) -> list[str]:
    """Join each occurrence of a two-word phrase ("fire truck") into one token, left to right."""
    pairs = {tuple(p.split()) for p in phrases if len(p.split()) == 2}
    if not pairs:
        return list(words)
    out: list[str] = []
    i = 0
    while i < len(words):
        if i + 1 < len(words) and (words[i], words[i + 1]) in pairs:
            out.append(f"{words[i]} {words[i + 1]}")
            i += 2
        else:
            out.append(words[i])
            i += 1
    return out


def clean_caption(text: str, phrases: Iterable[str] = ()) -> list[str]:
    """A caption as target tokens: `caption_words`, two-word label names merged, and no trailing
    function word (a reference "a cat on the." teaches the decoder to stop there)."""
    words = merge_phrases(caption_words(text), phrases)
    while words and words[-1] in NO_END_WORDS:
        words.pop()
    return words


def is_clean_token(token: str) -> bool:
    """Whether a vocabulary word could come out of `clean_caption` (one or two plain words)."""
    parts = token.split(" ")
    return 1 <= len(parts) <= 2 and all(WORD.fullmatch(p) for p in parts)


def caption_problems(text: str) -> list[str]:
    """Why a caption a user sees is malformed (empty list: it is fine): empty, a character that is not
    a letter, digit, space or inner hyphen (stray quotes, commas, inner full stops, <unk>), a last
    function word ("a cat on the"), a colour or size with no noun after it ("a red", "the big"; "the
    car is red" is fine), or a word said twice in a row ("a a", "cat cat"). One final full stop
    and a capital first letter are how sentences are written, not problems (issue 16: "a final full
    stop added by the detokeniser at most")."""
    body = text.strip()
    if body.endswith(".") and not body.endswith(".."):
        body = body[:-1]
    if not body.strip():
        return ["empty"]
    problems = []
    words = (body[:1].lower() + body[1:]).split(" ")
    if any(not WORD.fullmatch(w) for w in words):
        problems.append("not plain words")
    if words[-1] in NO_END_WORDS:
        problems.append(f"ends on {words[-1]!r}")
    elif words[-1] in MODIFIER_WORDS and (len(words) == 1 or words[-2] in (NO_END_WORDS | MODIFIER_WORDS) - _LINKING):
        problems.append(f"ends on {words[-1]!r} with no noun")
    if any(a == b for a, b in zip(words, words[1:])):
        problems.append("a word repeated")
    return problems


def names_object(caption: str, names: Iterable[str]) -> bool:
    """Whether `caption` names one of `names` ("cat", "big cat"): as whole words, a plural s or es allowed."""
    words = caption_words(caption)
    text = " " + " ".join(words) + " "
    for name in names:
        n = " ".join(caption_words(name))
        if n and any(f" {n}{s} " in text for s in ("", "s", "es")):
            return True
    return False
