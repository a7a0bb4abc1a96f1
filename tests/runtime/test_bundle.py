"""Bundle validation: every problem is one BundleError line naming it and the fix."""

import hashlib
import json
import shutil

import onnx
import pytest

from edge_s2s.runtime import BundleError, EdgeS2SError, InputError, Seq2Seq
from edge_s2s.runtime.bundle import Bundle
from edge_s2s.runtime.session import create_session, resolve_providers


@pytest.fixture
def bundle(model_bundle, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(model_bundle, d)
    return d


def _edit_manifest(d, fn):
    m = json.loads((d / "manifest.json").read_text())
    fn(m)
    (d / "manifest.json").write_text(json.dumps(m))


def _rehash(d, name):
    _edit_manifest(d, lambda m: m["files"].__setitem__(name, hashlib.sha256((d / name).read_bytes()).hexdigest()))


def _error(d, *words):
    with pytest.raises(BundleError) as e:
        Bundle.load(d)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    return msg


def test_loads(bundle):
    b = Bundle.load(bundle)
    assert b.providers == ["CPUExecutionProvider"] and len(b.vocab) == b.manifest.tokens.size


def test_missing_file(bundle):
    (bundle / "decoder_step.onnx").unlink()
    _error(bundle, "decoder_step.onnx", "missing", "re-export")


def test_not_a_bundle(tmp_path):
    _error(tmp_path, "manifest.json")


def test_sha_mismatch(bundle):
    with open(bundle / "encoder.onnx", "ab") as f:
        f.write(b"\0")
    _error(bundle, "encoder.onnx", "sha256", "re-export")


def test_format_version(bundle):
    _edit_manifest(bundle, lambda m: m.__setitem__("format_version", 99))
    _error(bundle, "version 99", "re-export")


def test_tokens_size(bundle):
    _edit_manifest(bundle, lambda m: m["tokens"].__setitem__("size", 999))
    _error(bundle, "999", "tokens")


def test_graph_io_mismatch(bundle):
    def rename(m):
        m["decoder_step"]["outputs"][0]["name"] = "log_probs"
    _edit_manifest(bundle, rename)
    _error(bundle, "logprobs", "re-export")


def test_graph_dtype_mismatch(bundle):
    def dtype(m):
        for t in m["decoder_step"]["inputs"]:
            if t["name"] == "state.h":
                t["dtype"] = "float16"
    _edit_manifest(bundle, dtype)
    _error(bundle, "state.h", "float16", "float32")


def test_graph_lacks_state(bundle):
    model = onnx.load(bundle / "decoder_step.onnx")
    for o in list(model.graph.output):
        if o.name == "state.ntm.next":
            model.graph.output.remove(o)
    onnx.save(model, bundle / "decoder_step.onnx")
    _rehash(bundle, "decoder_step.onnx")
    _error(bundle, "state.ntm.next")


def test_corrupt_onnx(bundle):
    (bundle / "encoder.onnx").write_bytes(b"this is not a protobuf")
    _rehash(bundle, "encoder.onnx")
    _error(bundle, "encoder.onnx", "re-export")


def test_bad_json(bundle):
    (bundle / "manifest.json").write_text("{nope")
    _error(bundle, "JSON")


def test_providers():
    with pytest.raises(EdgeS2SError, match="unknown provider"):
        resolve_providers("tpu")
    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        with pytest.raises(EdgeS2SError, match="onnxruntime-gpu"):
            resolve_providers("cuda")
        assert resolve_providers("auto") == ["CPUExecutionProvider"]


def test_session_options(model_bundle):
    for level in ("all", "extended", "basic", "disable"):
        s = create_session(model_bundle / "decoder_step.onnx", "cpu", threads=1, optimization=level)
        assert s.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(EdgeS2SError):
        create_session(model_bundle / "decoder_step.onnx", optimization="max")


def test_input_errors(model_bundle):
    m = Seq2Seq.load(model_bundle)
    for bad, word in ((["w4", ""], "input 2"), (["w4", 3], "input 2"), (["w4 " * 60], "input 1"), ("w4", "list")):
        with pytest.raises(InputError, match=word):
            m.generate(bad)


def test_onnxruntime_fallback_banner_goes_to_stderr_not_stdout(model_bundle, capsys, monkeypatch):
    """onnxruntime prints "EP Error ... Falling back" with print(): results on stdout stay clean.
    The first session creation is made to fail once, so ORT's own fallback path runs and prints."""
    from onnxruntime.capi import onnxruntime_inference_collection as oic

    from edge_s2s.runtime.session import create_session

    real = oic.InferenceSession._create_inference_session
    calls = []

    def fail_once(self, *a, **k):
        calls.append(1)
        out = real(self, *a, **k)
        if len(calls) == 1:  # as a provider that fails to initialise: ORT prints its banner and retries
            raise RuntimeError("provider could not be initialised")
        return out

    monkeypatch.setattr(oic.InferenceSession, "_create_inference_session", fail_once)
    capsys.readouterr()
    sess = create_session(model_bundle / "decoder_step.onnx")
    cap = capsys.readouterr()
    assert len(calls) == 2 and sess.get_providers()[0] == "CPUExecutionProvider"
    assert "EP Error" in cap.err and cap.out == ""
