"""Caption metrics as captioning papers report them: BLEU-1..4, METEOR and CIDEr-D via coco-caption.

Uses pycocoevalcap (the pip packaging of coco-caption): `Bleu(4)`, `Meteor()` and `Cider()`,
whose Cider class is the CIDEr-D variant (clipped counts, length penalty, sigma 6).
Scores are returned as coco-caption computes them: BLEU and METEOR in 0..1 (papers print
them x100), CIDEr-D on its own scale (1.0 here is "100" in a paper). CIDEr-D weighs n-grams
by their document frequency over the references given, so it needs a corpus of several
images: one image alone always scores 0.

Tokenising: with Java on PATH both sides go through coco-caption's PTBTokenizer (Stanford
CoreNLP, lower-cased, punctuation dropped), exactly as published numbers are made; without
Java a simple fallback lower-cases, splits off punctuation and drops it, which matches PTB
on plain captions but not on every contraction. METEOR needs Java too; without it (or with
meteor=False) the key is absent and a warning says so once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil

from ...runtime.errors import EdgeS2SError
from ..methods.rewards import simple_tokenize

log = logging.getLogger(__name__)
_warned: set[str] = set()


class MetricsError(EdgeS2SError):
    """The metric's package is missing or the references and hypotheses do not match."""


def _require() -> None:
    try:
        import pycocoevalcap  # noqa: F401
    except ImportError:
        raise MetricsError("caption metrics need pycocoevalcap: pip install 'edge-s2s[eval]'") from None


def _warn_once(msg: str) -> None:
    if msg not in _warned:
        _warned.add(msg)
        log.warning(msg)


def java_available() -> bool:
    return shutil.which("java") is not None


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 (where child processes write) to /dev/null for a moment."""
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _tokenize(captions: dict[str, list[str]], java: bool) -> dict[str, list[str]]:
    if not java:
        return {k: [simple_tokenize(c) for c in v] for k, v in captions.items()}
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    # PTBTokenizer aligns its output by line: a caption without a word would shift every later
    # caption onto the wrong image, so only captions with a word go through it.
    flat = [(k, i, " ".join(c.split())) for k, v in captions.items() for i, c in enumerate(v)]
    keep = {str(n): [{"caption": c}] for n, (_, _, c) in enumerate(flat) if simple_tokenize(c)}
    with _quiet_stderr():  # the Java tokenizer prints a progress line on the process's stderr
        done = PTBTokenizer().tokenize(keep) if keep else {}
    out: dict[str, list[str]] = {k: [""] * len(v) for k, v in captions.items()}
    for n, (k, i, _) in enumerate(flat):
        out[k][i] = done.get(str(n), [""])[0]
    return out


def _meteor(gts: dict[str, list[str]], res: dict[str, list[str]]) -> float:
    from pycocoevalcap.meteor.meteor import Meteor

    m = Meteor()
    try:
        score, _ = m.compute_score(gts, res)
    finally:  # stop the Java process now, not whenever the object is collected
        p = m.meteor_p
        with m.lock:
            for stream in (p.stdin, p.stdout, p.stderr):
                stream.close()
            p.kill()
            p.wait()
    return float(score)


def caption_scores(references: dict[str, list[str]], hypotheses: dict[str, str], meteor: bool = True) -> dict[str, float]:
    """Corpus scores of one hypothesis per image against that image's references.

    Keys: "BLEU-1".."BLEU-4", "METEOR" (only with Java and meteor=True), "CIDEr-D".
    Both dicts must have the same image ids; an empty hypothesis is allowed (it scores 0).
    """
    _require()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    if not hypotheses:
        raise MetricsError("no hypotheses to score: caption at least one image")
    missing = [k for k in references if k not in hypotheses]
    extra = [k for k in hypotheses if k not in references]
    if missing or extra:
        what = f"no hypothesis for image {missing[0]!r} ({len(missing)} missing)" if missing else \
               f"no references for image {extra[0]!r} ({len(extra)} without)"
        raise MetricsError(f"{what}: pass references and hypotheses for the same image ids")
    empty_refs = [k for k, v in references.items() if not v or not any(r.strip() for r in v)]
    if empty_refs:
        raise MetricsError(f"image {empty_refs[0]!r} has no reference caption: give every image at least one")

    java = java_available()
    if not java:
        _warn_once("java not found: captions tokenised with the simple fallback instead of PTBTokenizer, no METEOR "
                   "(sudo apt-get install -y default-jre-headless)")
    ids = sorted(references)
    both = _tokenize({**{f"r{k}": list(references[k]) for k in ids}, **{f"h{k}": [hypotheses[k]] for k in ids}}, java)
    gts = {k: both[f"r{k}"] for k in ids}  # one tokenizer run (one JVM start) for both sides
    res = {k: both[f"h{k}"] for k in ids}

    with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its length ratio
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleu)}
    if meteor and java:
        scores["METEOR"] = _meteor(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    scores["CIDEr-D"] = float(cider)
    return scores
