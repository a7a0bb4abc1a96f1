"""coco-caption scores: perfect > partial > wrong, METEOR with Java only, no leaked Java process."""

import logging
import os
import sys
from pathlib import Path

import pytest

from edge_s2s.runtime.errors import EdgeS2SError
from edge_s2s.train.caption import metrics as caption_metrics
from edge_s2s.train.caption.metrics import MetricsError, caption_scores, java_available
from edge_s2s.train.methods.rewards import simple_tokenize

REFS = {
    "1": ["A dog runs across the green grass.", "A brown dog running on a lawn."],
    "2": ["Two cats sleep on a red sofa.", "Cats sleeping on a couch."],
    "3": ["A red car parked by the road.", "A car at the side of a street."],
    "4": ["A man rides a bicycle down the hill.", "Someone cycling downhill."],
}
PERFECT = {k: v[0] for k, v in REFS.items()}
PARTIAL = {"1": "A dog runs on the grass.", "2": "Two cats on a sofa.",
           "3": "A car by the road.", "4": "A man rides a bike."}
WRONG = {"1": "An aeroplane in the sky.", "2": "A plate of food.", "3": "People at a beach.", "4": ""}


def _java_children() -> list[str]:
    me = str(os.getpid())
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if fields[1] == me and "java" in comm:
            out.append(comm)
    return out


@pytest.fixture(scope="module")
def scores():
    pytest.importorskip("pycocoevalcap")
    perfect = caption_scores(REFS, PERFECT, meteor=True)
    leaked = _java_children() if sys.platform.startswith("linux") else []
    return {"perfect": perfect, "partial": caption_scores(REFS, PARTIAL, meteor=False),
            "wrong": caption_scores(REFS, WRONG, meteor=False), "leaked": leaked}


def test_perfect_scores_top_and_ordering(scores):
    p, q, w = scores["perfect"], scores["partial"], scores["wrong"]
    assert p["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and p["BLEU-1"] == pytest.approx(1.0, abs=1e-6)
    assert p["CIDEr-D"] > q["CIDEr-D"] > w["CIDEr-D"] >= 0.0
    for n in range(1, 5):
        assert p[f"BLEU-{n}"] >= q[f"BLEU-{n}"] >= w[f"BLEU-{n}"]
    assert q["BLEU-1"] > w["BLEU-1"]
    assert all(isinstance(v, float) and 0.0 <= v for v in q.values())
    assert all(0.0 <= q[f"BLEU-{n}"] <= 1.0 for n in range(1, 5))


def test_meteor_present_iff_java(scores):
    assert ("METEOR" in scores["perfect"]) == java_available()
    assert "METEOR" not in scores["partial"]  # meteor=False
    if java_available():
        assert scores["perfect"]["METEOR"] == pytest.approx(1.0, abs=1e-3)
    assert scores["leaked"] == []  # the METEOR JVM was stopped


def test_empty_hypotheses_score_zero():
    pytest.importorskip("pycocoevalcap")
    s = caption_scores(REFS, {k: "" for k in REFS}, meteor=False)
    assert s["BLEU-1"] == 0.0 and s["CIDEr-D"] == 0.0


def test_ids_must_match():
    pytest.importorskip("pycocoevalcap")
    with pytest.raises(MetricsError, match="no hypothesis for image '4'"):
        caption_scores(REFS, {k: v for k, v in PERFECT.items() if k != "4"})
    with pytest.raises(MetricsError, match="no references for image 'x'"):
        caption_scores(REFS, {**PERFECT, "x": "a"})
    with pytest.raises(MetricsError, match="no reference caption"):
        caption_scores({**REFS, "5": [""]}, {**PERFECT, "5": "a"})


def test_without_java_falls_back_and_warns_once(monkeypatch, caplog):
    pytest.importorskip("pycocoevalcap")
    monkeypatch.setattr(caption_metrics, "java_available", lambda: False)
    monkeypatch.setattr(caption_metrics, "_warned", set())
    with caplog.at_level(logging.WARNING):
        a = caption_scores(REFS, PERFECT)
        b = caption_scores(REFS, PARTIAL)
    assert "METEOR" not in a and a["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and a["CIDEr-D"] > b["CIDEr-D"]
    assert caplog.text.count("java not found") == 1


def test_simple_tokenizer():
    assert simple_tokenize("A dog's  toy, on the Grass!") == "a dog's toy on the grass"
    assert simple_tokenize("...") == ""


@pytest.mark.skipif(not java_available(), reason="PTBTokenizer needs java")
def test_ptb_keeps_captions_aligned_around_empty_ones():
    pytest.importorskip("pycocoevalcap")
    out = caption_metrics._tokenize({"x": ["", "A Dog."], "y": ["!!"], "z": ["Cat, sitting."]}, java=True)
    assert out == {"x": ["", "a dog"], "y": [""], "z": ["cat sitting"]}


def test_missing_package_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocoevalcap", None)
    with pytest.raises(EdgeS2SError) as e:
        caption_scores(REFS, PERFECT)
    assert "pip install 'edge-s2s[eval]'" in str(e.value) and "\n" not in str(e.value)
