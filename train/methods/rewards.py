"""Sequence-level rewards for self-critical training (train/methods/scst.py): CIDEr-D and sentence BLEU.

Both score whole decoded sentences against the references of the training item they were
decoded for, which is the point of the notes' "object level v.s. component level" slide:
the model is judged on the sentence, not on each word.

`CiderD` follows coco-caption's CIDEr-D (pycocoevalcap `CiderScorer`: n = 1..4, tf-idf
vectors, counts clipped by the reference's, Gaussian length penalty sigma = 6, x10), except
that the document frequencies come from a fixed reference corpus given once (the training
references), not from the batch being scored: a batch of 16 images would make every n-gram
look rare. With the corpus equal to the scored images it is exactly pycocoevalcap's score.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import sacrebleu

from ...runtime.text import detokenize, tokenize

NGram = tuple[str, ...]


def ngram_counts(words: Sequence[str], n: int = 4) -> Counter[NGram]:
    """Counts of every 1..n-gram of a tokenised sentence (coco-caption's `precook`)."""
    counts: Counter[NGram] = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i : i + k])] += 1
    return counts


class CiderD:
    """CIDEr-D of a hypothesis against the references of one corpus item.

    references: per item, its reference sentences already tokenised (space-separated words).
    Document frequency of an n-gram = number of items whose references contain it.
    """

    def __init__(self, references: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0):
        if not references:
            raise ValueError("CIDEr-D needs at least one item with references")
        self.n, self.sigma = n, sigma
        cooked = [[ngram_counts(r.split(), n) for r in refs] for refs in references]
        df: dict[NGram, float] = defaultdict(float)
        for refs in cooked:
            for g in {g for r in refs for g in r}:
                df[g] += 1.0
        self.df = dict(df)
        self.ref_len = math.log(float(len(references)))
        self.refs = [[self._vec(c) for c in refs] for refs in cooked]  # computed once, reused per sample

    def _vec(self, counts: Counter[NGram]) -> tuple[list[dict[NGram, float]], list[float], int]:
        """(tf-idf weights per n, their norms, length in words) -- coco-caption's counts2vec."""
        vec: list[dict[NGram, float]] = [{} for _ in range(self.n)]
        norm = [0.0] * self.n
        length = 0
        for g, tf in counts.items():
            k = len(g) - 1
            w = float(tf) * (self.ref_len - math.log(max(1.0, self.df.get(g, 0.0))))
            vec[k][g] = w
            norm[k] += w * w
            if k == 1:  # coco-caption counts the bigrams as the length; kept for identical scores
                length += tf
        return vec, [math.sqrt(x) for x in norm], length

    def _sim(self, hyp, ref) -> float:
        (vh, nh, lh), (vr, nr, lr) = hyp, ref
        penalty = math.exp(-((lh - lr) ** 2) / (2 * self.sigma**2))
        total = 0.0
        for k in range(self.n):
            val = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
            if nh[k] != 0 and nr[k] != 0:
                val /= nh[k] * nr[k]
            total += val * penalty
        return total

    def score(self, hypothesis: str, item: int) -> float:
        """CIDEr-D of one tokenised hypothesis (space-separated words) for corpus item `item`."""
        hyp = self._vec(ngram_counts(hypothesis.split(), self.n))
        refs = self.refs[item]
        return 10.0 * sum(self._sim(hyp, r) for r in refs) / self.n / len(refs)


class CaptionReward:
    """CIDEr-D of detokenised captions against all training references of their image."""

    def __init__(self, references: Sequence[Sequence[str]]):
        self.cider = CiderD([[simple_tokenize(r) for r in refs] for refs in references])

    def __call__(self, hypotheses: Sequence[str], items: Sequence[int]) -> np.ndarray:
        return np.array([self.cider.score(simple_tokenize(h), i) for h, i in zip(hypotheses, items)])


class BleuReward:
    """Smoothed sentence BLEU (sacrebleu, 0..1) against each item's one reference, both sides
    normalised by the training tokenizer as corpus BLEU is in train/translate/decode.py."""

    def __init__(self, references: Sequence[str], lowercase: bool = True):
        self.refs = [detokenize(tokenize(r, lowercase)) for r in references]

    def __call__(self, hypotheses: Sequence[str], items: Sequence[int]) -> np.ndarray:
        return np.array([sentence_bleu(h, self.refs[i]) for h, i in zip(hypotheses, items)])


def sentence_bleu(hypothesis: str, reference: str) -> float:
    """sacrebleu sentence BLEU with exponential smoothing, scaled to 0..1."""
    return float(sacrebleu.sentence_bleu(hypothesis, [reference], smooth_method="exp").score) / 100.0

_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)


def simple_tokenize(text: str) -> str:
    """The no-Java fallback: lower-cased words (apostrophes kept inside), punctuation dropped."""
    return " ".join(_WORD_RE.findall(text.lower()))
