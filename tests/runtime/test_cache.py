"""The runtime's cache: a file's checksum is reused only while the file is unchanged (its ctime
cannot be put back), and the optimised graph ONNX Runtime saved gives the same outputs."""

import os
import shutil

import numpy as np
import pytest

from edge_s2s.runtime import Seq2Seq
from edge_s2s.runtime.bundle import sha256_file
from edge_s2s.runtime.cache import (
    CHECKSUMS_FILE,
    cache_dir,
    known_sha256,
    known_sha256s,
    optimized_graph,
    prune_graphs,
    used,
)
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


def test_a_bundles_files_are_checked_with_one_store_read_and_no_write_when_known(cache, tmp_path):
    files = [tmp_path / f"f{i}" for i in range(3)]
    for i, f in enumerate(files):
        f.write_bytes(bytes([i]) * 100)
    calls = []

    def count(p):
        calls.append(p)
        return sha256_file(p)

    first = known_sha256s(files, count)
    assert first == {f: sha256_file(f) for f in files} and len(calls) == 3
    store = cache / CHECKSUMS_FILE
    before = os.stat(store).st_mtime_ns, os.stat(store).st_ino
    assert known_sha256s(files, count) == first and len(calls) == 3  # all remembered
    assert (os.stat(store).st_mtime_ns, os.stat(store).st_ino) == before  # nothing rewritten
    files[1].write_bytes(b"x" * 100)
    again = known_sha256s(files, count)
    assert calls[3:] == [files[1]] and again[files[1]] != first[files[1]] and again[files[0]] == first[files[0]]


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


def test_optimised_graphs_are_pruned_least_recently_used_first(tmp_path):
    folder = tmp_path / "ort"
    folder.mkdir()
    paths = [folder / f"g{i}.onnx" for i in range(4)]
    for i, p in enumerate(paths):
        p.write_bytes(b"x" * 100)
        os.utime(p, ns=(i * 10**9, i * 10**9))  # g0 oldest ... g3 newest
    used(paths[0])  # a hit renews g0
    removed = prune_graphs(folder, keep_bytes=250)
    assert removed == [paths[1], paths[2]]
    assert sorted(folder.iterdir()) == [paths[0], paths[3]]
    assert prune_graphs(folder, keep_bytes=250) == []  # under the cap: nothing goes


def test_a_real_session_prunes_the_cache_it_writes(model_bundle, cache, monkeypatch):
    """Creating a session writes its optimised graph and then prunes the folder to its cap, oldest
    entries first; the model still loads and runs."""
    from edge_s2s.runtime import cache as cache_mod

    ort_dir = cache / "ort"
    ort_dir.mkdir(parents=True)
    stale = ort_dir / "stale.onnx"
    stale.write_bytes(b"y" * 1000)
    os.utime(stale, ns=(0, 0))
    monkeypatch.setattr(cache_mod, "MAX_GRAPH_BYTES", 10**12)
    Seq2Seq.load(model_bundle)
    assert stale.is_file() and len(list(ort_dir.glob("*.onnx"))) == 3  # under the cap: kept, two graphs added
    for p in ort_dir.glob("*.onnx"):
        if p != stale:
            p.unlink()
    monkeypatch.setattr(cache_mod, "MAX_GRAPH_BYTES", 1)
    m = Seq2Seq.load(model_bundle)
    assert not stale.exists()  # over the cap: the least recently used went first
    assert m.decode_ids([[4, 5, 6]])[0]
