"""The runtime's cache: a file's checksum is reused only while the file is unchanged (its ctime
cannot be put back), and the optimised graph ONNX Runtime saved gives the same outputs."""

import os
import shutil

import numpy as np
import pytest

from edge_s2s.runtime import Seq2Seq
from edge_s2s.runtime.bundle import sha256_file
from edge_s2s.runtime.cache import cache_dir, known_sha256, optimized_graph
from edge_s2s.runtime.errors import BundleError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_S2S_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGE_S2S_NO_CACHE", raising=False)
    return tmp_path / "cache"


def test_checksum_is_reused_only_while_the_file_is_unchanged(cache, tmp_path):
    f = tmp_path / "graph.onnx"
    f.write_bytes(b"a" * 1000)
    calls = []

    def count(p):
        calls.append(p)
        return sha256_file(p)

    first = known_sha256(f, count)
    assert known_sha256(f, count) == first and len(calls) == 1  # remembered
    st = os.stat(f)
    f.write_bytes(b"b" * 1000)  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime put back
    assert known_sha256(f, count) != first and len(calls) == 2  # the ctime gave it away


def test_a_changed_graph_fails_its_checksum_even_after_a_cached_load(model_bundle, cache, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(model_bundle, d)
    Seq2Seq.load(d)  # caches the checksums
    g = d / "decoder_step.onnx"
    st = os.stat(g)
    raw = bytearray(g.read_bytes())
    raw[-10] ^= 0xFF
    g.write_bytes(bytes(raw))
    os.utime(g, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(BundleError, match="does not match its sha256"):
        Seq2Seq.load(d)


def test_the_optimised_graph_is_saved_once_and_gives_the_same_output(model_bundle, cache):
    fresh = Seq2Seq.load(model_bundle, loop="reference")
    saved = sorted((cache / "ort").glob("*.onnx"))
    assert len(saved) == 2  # encoder and step, optimised by ORT and kept
    again = Seq2Seq.load(model_bundle, loop="reference")  # loads them with optimisation off
    assert sorted((cache / "ort").glob("*.onnx")) == saved
    a = fresh.generate(["w4 w5 w6", "w8 w9"])[0].hypotheses[0]
    b = again.generate(["w4 w5 w6", "w8 w9"])[0].hypotheses[0]
    assert a.ids == b.ids and np.allclose(a.token_log_probs, b.token_log_probs, atol=1e-6)


def test_a_damaged_cache_entry_is_replaced(model_bundle, cache):
    Seq2Seq.load(model_bundle)
    for p in (cache / "ort").glob("*.onnx"):
        p.write_bytes(b"not a model")
    m = Seq2Seq.load(model_bundle)
    assert m.generate(["w4"])[0].hypotheses[0].ids is not None
    assert all(p.stat().st_size > 100 for p in (cache / "ort").glob("*.onnx"))


def test_no_cache_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGE_S2S_NO_CACHE", "1")
    assert cache_dir() is None and optimized_graph("0" * 64, "all") is None
