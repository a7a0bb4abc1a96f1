"""Property-based fuzzing (hypothesis) of what a user or a stranger's bundle can hand the runtime:
manifest mutations, damaged graph and token files, and image, audio and text inputs. Every case
must end in edge-s2s's own error (EdgeS2SError, one line, exit code 1 through the CLI) or in a
normal result: never another exception, never a traceback.

Bounded for CI (a few hundred cases, about a minute); `FUZZ_EXAMPLES=2000 pytest tests/cli/test_fuzz.py`
runs more. Cases that once found a defect are kept in tests/data/fuzz_corpus.json and replayed
first, every run.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paths import TEST_DATA

from edge_s2s.cli.app import run
from edge_s2s.runtime.errors import EdgeS2SError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CORPUS = json.loads((TEST_DATA / "fuzz_corpus.json").read_text(encoding="utf-8"))

JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats() | st.text(max_size=12),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                    max_leaves=5)


def _paths(node, prefix=()):
    """Every place in a JSON tree: tuples of keys / indices."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def mutate(doc: dict, path: tuple, action: str, value) -> dict:
    """doc with the node at `path` replaced by `value`, deleted, or (a list) emptied."""
    doc = copy.deepcopy(doc)
    if not path:
        return value if action == "replace" else {}
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    if action == "delete":
        del parent[key]
    elif action == "empty":
        parent[key] = type(parent[key])() if isinstance(parent[key], (dict, list, str)) else 0
    else:
        parent[key] = value
    return doc


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


class Cli:
    """Run the CLI in-process; any exception out of `run` is a traceback a user would see."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, args: list[str]) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = run([str(a) for a in args])
        cap = self.capsys.readouterr()
        assert rc in (0, 1), (rc, cap.err)
        if rc and not (args[0] == "verify" and not cap.err and " failed" in cap.out):  # verify: FAIL lines
            lines = cap.err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), cap.err
        assert "Traceback" not in cap.err + cap.out
        return rc, cap.out, cap.err


@pytest.fixture
def cli(capsys):
    return Cli(capsys)


def _write_manifest(d: Path, m) -> None:
    (d / "manifest.json").write_text(json.dumps(m) if not isinstance(m, bytes) else m.decode("latin-1"))


def _fresh(bundle: Path, work: Path) -> Path:
    d = work / "b"
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(bundle, d)
    return d


def _check_bundle(cli, d: Path) -> None:
    """info, translate and verify on a (damaged) translator bundle: a result or one error line."""
    cli(["info", d])
    cli(["translate", "--bundle", d, "a b c"])
    cli(["verify", d])


# --- manifests --------------------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS["manifest"], ids=[c["why"][:40] for c in CORPUS["manifest"]])
def test_corpus_manifest_cases(cli_bundle, tmp_path, cli, case):
    d = _fresh(cli_bundle, tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    _write_manifest(d, mutate(m, tuple(case["path"]), case["action"], case.get("value")))
    _check_bundle(cli, d)


@FUZZ
@given(data=st.data())
def test_manifest_mutations(cli_bundle, tmp_path, cli, data):
    d = _fresh(cli_bundle, tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    places = [p for p in _paths(m) if not (p and p[0] == "metrics")]  # metrics is free-form, only shown
    path = data.draw(st.sampled_from(places))
    action = data.draw(st.sampled_from(["replace", "delete", "empty"]) if path else st.just("replace"))
    value = data.draw(JSON) if action == "replace" else None
    _write_manifest(d, mutate(m, path, action, value))
    _check_bundle(cli, d)


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_manifest_bytes(cli_bundle, tmp_path, cli, raw):
    d = _fresh(cli_bundle, tmp_path)
    (d / "manifest.json").write_bytes(raw)
    _check_bundle(cli, d)


# --- graph and token files (checksums updated, as a hostile bundle would) -----------------------


@FUZZ
@given(data=st.data())
def test_damaged_graphs_and_tokens_with_matching_checksums(cli_bundle, tmp_path, cli, data):
    d = _fresh(cli_bundle, tmp_path)
    name = data.draw(st.sampled_from(["encoder.onnx", "decoder_step.onnx", "tokens.txt"]))
    raw = bytearray((d / name).read_bytes())
    how = data.draw(st.sampled_from(["truncate", "flip", "replace"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
    else:
        raw = bytearray(data.draw(st.binary(max_size=300) | st.text(max_size=100).map(lambda t: t.encode())))
    (d / name).write_bytes(bytes(raw))
    m = json.loads((d / "manifest.json").read_text())
    m["files"][name] = _sha(d / name)
    _write_manifest(d, m)
    _check_bundle(cli, d)


# --- inputs ------------------------------------------------------------------------------------


@FUZZ
@given(text=st.text(max_size=80))
def test_any_text_translates_or_is_one_line(cli_bundle, cli, text):
    if text.startswith("-"):  # an option to the CLI, not text
        text = " " + text
    cli(["translate", "--bundle", cli_bundle, text])


def _image_bytes(data) -> bytes:
    from PIL import Image

    kind = data.draw(st.sampled_from(["random", "truncated-jpeg", "truncated-png", "tiny", "huge-header"]))
    if kind == "random":
        return data.draw(st.binary(max_size=400))
    if kind == "huge-header":  # a PNG header that claims a gigapixel image
        import struct
        import zlib

        ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
        chunk = b"IHDR" + ihdr
        return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    w, h = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40))
    img = Image.fromarray(np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, 255, (h, w, 3), np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG" if kind == "truncated-png" else "JPEG")
    raw = buf.getvalue()
    return raw if kind == "tiny" else raw[: data.draw(st.integers(0, len(raw) - 1))]


@pytest.fixture(scope="module")
def captioner():
    from edge_s2s.runtime import Captioner

    return Captioner.load(threads=1)


@pytest.fixture(scope="module")
def transcriber():
    from edge_s2s.runtime import Transcriber

    return Transcriber.load(threads=1)


def _one_line_or_result(fn):
    try:
        return fn()
    except EdgeS2SError as e:
        assert str(e) and "\n" not in str(e)
        return None


@FUZZ
@given(data=st.data())
def test_any_image_file_captions_or_is_one_line(tmp_path, captioner, data):
    p = tmp_path / data.draw(st.sampled_from(["x.jpg", "x.png", "x.gif", "x", "x.pdf"]))
    p.write_bytes(_image_bytes(data))
    _one_line_or_result(lambda: captioner.caption([p]))


@FUZZ
@given(data=st.data())
def test_any_audio_file_transcribes_or_is_one_line(tmp_path, transcriber, data):
    import soundfile as sf

    kind = data.draw(st.sampled_from(["random", "truncated", "odd"]))
    p = tmp_path / data.draw(st.sampled_from(["x.wav", "x.flac", "x.ogg", "x"]))
    if kind == "random":
        p.write_bytes(data.draw(st.binary(max_size=400)))
    else:
        rate = data.draw(st.sampled_from([1, 100, 8000, 16000, 192000]))
        n = data.draw(st.integers(0, 4000))
        x = np.random.default_rng(n).normal(0, data.draw(st.sampled_from([0.0, 1e-9, 0.3, 50.0])), n).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, x, rate, format="WAV", subtype=data.draw(st.sampled_from(["PCM_16", "FLOAT", "PCM_U8"])))
        raw = buf.getvalue()
        p.write_bytes(raw if kind == "odd" else raw[: data.draw(st.integers(0, len(raw)))])
    _one_line_or_result(lambda: transcriber.transcribe([p]))


def test_a_bad_image_through_the_cli_is_one_line(tmp_path, cli):
    p = tmp_path / "broken.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rc, _, err = cli(["caption", p])
    assert rc == 1 and "broken.jpg" in err


# --- the API raises only its own error type ------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_api_raises_only_edge_s2s_errors(cli_bundle, data):
    from edge_s2s.runtime import Beam, Greedy, Sample, Seq2Seq

    m = Seq2Seq.load(cli_bundle)
    kw = {}
    for name in ("max_length", "min_length", "batch_size"):
        if data.draw(st.booleans()):
            kw[name] = data.draw(JSON)
    search = data.draw(st.sampled_from([Greedy, Beam, Sample]))
    try:
        s = search(**({"size": data.draw(JSON)} if search is Beam else {}))
    except (ValueError, TypeError):  # a config refused at construction, as Python's own dataclasses do
        s = Greedy()
    try:
        m.generate(data.draw(st.lists(st.text(max_size=20), max_size=3)), search=s, **kw)
    except EdgeS2SError as e:
        assert "\n" not in str(e)
