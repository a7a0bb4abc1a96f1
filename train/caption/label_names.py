"""Plain English names for the 1000 ImageNet classes of the captioner's CNN head.

EfficientNet-Lite0's ImageNet classifier gives the captioner the top-K object labels of a
photo, and the captioner copies a label's name into its caption, so each class needs the word
a person would write there: "cat" for the five cat breeds, "dog" for every dog breed, "coffee"
for espresso, "car" for a sports car, never "tench" or "tabby".

The names are derived from WordNet 3.0, which ImageNet's classes are noun synsets of, by
`scripts/build_imagenet_names.py` (its docstring has the details) and committed next to this
module as `imagenet_names.tsv` (index, wnid, WordNet's first lemma, name; standard class
order, the sorted wnids). Each name comes from, in order: a per-class override with a stated
reason; else the nearest synset on the class's first-hypernym chain (the class itself first)
that is a curated basic-level category (its word) or a class whose own word is already that
level (kept); else the class's most frequently tagged lemma, cleaned. A name is one or two
lower-case words of letters and hyphens.

Nothing here imports torch: reading the names needs only the TSV.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ..core.errors import DataError

NAMES_TSV = Path(__file__).with_name("imagenet_names.tsv")
N_CLASSES = 1000
HEADER = ("index", "wnid", "wordnet", "name")
_NAME_RE = re.compile(r"[a-z]+(?:-[a-z]+)*(?: [a-z]+(?:-[a-z]+)*)?")
_WNID_RE = re.compile(r"n\d{8}")
_REBUILD = "rebuild it with scripts/build_imagenet_names.py"


def load_label_names(path: Path = NAMES_TSV) -> list[str]:
    """The 1000 plain class names, in the classifier's output order (index 0 = n01440764)."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
    except OSError as e:
        raise DataError(f"{path}: cannot read the ImageNet names ({e.strerror}): {_REBUILD}") from None
    if not rows or tuple(rows[0]) != HEADER:
        raise DataError(f"{path}:1: header is not {'/'.join(HEADER)}: {_REBUILD}")
    names = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(HEADER):
            raise DataError(f"{path}:{line}: {len(row)} fields, not {len(HEADER)}: {_REBUILD}")
        index, wnid, _, name = row
        if index != str(len(names)) or not _WNID_RE.fullmatch(wnid):
            raise DataError(f"{path}:{line}: expected class {len(names)} with a wnid, got {index!r} {wnid!r}: "
                            f"{_REBUILD}")
        if not _NAME_RE.fullmatch(name):
            raise DataError(f"{path}:{line}: {name!r} is not one or two lower-case words: {_REBUILD}")
        names.append(name)
    if len(names) != N_CLASSES:
        raise DataError(f"{path}: {len(names)} classes, not {N_CLASSES}: {_REBUILD}")
    return names


def label_vocabulary(path: Path = NAMES_TSV) -> list[str]:
    """The distinct words the names use, sorted ("fire truck" gives "fire" and "truck";
    a hyphenated word such as "go-kart" stays one word, as the caption tokenizer keeps it)."""
    return sorted({word for name in load_label_names(path) for word in name.split()})


def two_word_names(path: Path = NAMES_TSV) -> list[str]:
    """The names of two words ("fire truck"): caption_text.merge_phrases joins them into one token."""
    return sorted({n for n in load_label_names(path) if " " in n})
