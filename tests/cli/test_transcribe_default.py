"""The default transcriber shipped in the package: `edge-s2s transcribe call.wav` with no --bundle, and
`Transcriber.load()` with no path, in a process where torch and onnx cannot be imported."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import soundfile as sf

from edge_s2s.cli.app import run
from edge_s2s.runtime.manifest import Manifest
from edge_s2s.runtime.tasks.transcriber import default_transcriber_path

DIGITS = re.compile(r"[0-9 ]*")


def _call(tmp_path: Path) -> Path:
    """A phone-call-like recording: the shipped golden phone number (espeak-ng), as 44.1 kHz stereo 24-bit, after
    half a second of quiet noise; nothing in it is the file the bundle holds."""
    x, rate = sf.read(str(default_transcriber_path() / "golden_0.wav"), dtype="float32")
    x = np.interp(np.arange(0, len(x), rate / 44100), np.arange(len(x)), x)
    noise = np.random.default_rng(0).normal(0, 1e-3, 22050)
    y = np.concatenate([noise, x]).astype(np.float32)
    path = tmp_path / "call.wav"
    sf.write(str(path), np.stack([y, 0.9 * y], 1), 44100, subtype="PCM_24")
    return path


def test_the_default_bundle_is_a_digit_transcriber():
    path = default_transcriber_path()
    assert path.parent.name == "models" and (path / "manifest.json").is_file()
    m = Manifest.load(path)
    assert m.task == "transcribe" and m.model["data"] == "fsdd digit strings"
    tokens = (path / "tokens.txt").read_text(encoding="utf-8").split("\n")[4:-1]
    assert tokens == list("0123456789") + [" "]


def test_no_flag_transcribes_digits(tmp_path, capsys):
    wav = _call(tmp_path)
    assert run(["transcribe", str(wav)]) == 0
    out = capsys.readouterr()
    text = out.out.rstrip("\n")
    assert "\n" not in text and DIGITS.fullmatch(text) and "Traceback" not in out.err
    # the same recording through an explicit --bundle gives the same transcript
    assert run(["transcribe", "--bundle", str(default_transcriber_path()), str(wav)]) == 0
    assert capsys.readouterr().out.rstrip("\n") == text


def test_golden_cases_verify(capsys):
    assert run(["verify", str(default_transcriber_path())]) == 0
    assert "golden_0.wav" in capsys.readouterr().out


def test_default_transcriber_without_torch_or_onnx(tmp_path):
    wav = _call(tmp_path)
    code = textwrap.dedent(f"""
        import re, sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        from edge_s2s.runtime import Beam
        from edge_s2s.runtime.tasks.transcriber import Transcriber
        r = Transcriber.load().transcribe([{str(wav)!r}], search=Beam(3))
        assert re.fullmatch(r"[0-9 ]*", r[0].text) and r[0].duration > 4, (r[0].text, r[0].duration)
        from edge_s2s.cli.app import run
        assert run(["transcribe", {str(wav)!r}]) == 0
        assert not any(k.startswith(("torch", "onnx.")) or k == "onnx" for k, v in sys.modules.items() if v is not None)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"


def test_profile_times_the_default_transcriber_and_says_its_thread_policy(capsys):
    """`profile` reads a transcriber's golden recordings (it used to treat them as text and crash) and
    prints the session settings it ran under."""
    b = str(default_transcriber_path())
    assert run(["profile", b, "--batch", "1,2", "--beam", "1", "--runs", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "threads: 1 intra-op, 1 inter-op per session, spinning off (--threads 1" in out
    assert run(["profile", b, "--batch", "2", "--beam", "1,2", "--runs", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["threads"]["spinning"] is False and res["threads"]["intra_op_threads"] >= 1
    from edge_s2s.runtime.session import default_threads

    # the transcriber's measured exception is said, not hidden: its step session runs on one thread
    assert res["threads"].get("step_intra_op_threads") == (1 if default_threads() > 1 else None)
    assert [(r["batch"], r["beam"]) for r in res["results"]] == [(2, 1), (2, 2)]
    for r in res["results"]:
        assert all(v[0] > 0 for v in r["stages"].values()), r["stages"]


def test_default_policy_decodes_one_recording_on_one_thread_and_batches_on_more(tmp_path):
    """Under the default policy (threads=0, CPU, more than one core) the step session has one thread
    and single recordings go through a one-thread encoder twin, made on first use (bench_threads.py:
    one recording 6.3 -> 4.3 ms on 2 cores); batches use the policy's session. Which session runs
    never changes a transcript."""
    from edge_s2s.runtime.session import default_threads
    from edge_s2s.runtime.tasks.transcriber import Transcriber

    wav = _call(tmp_path)
    tr = Transcriber.load()
    pinned = Transcriber.load(threads=1)
    assert pinned._solo is None  # an explicit thread count is obeyed as given
    if default_threads() < 2:
        assert tr._solo is None
        return
    assert tr.bundle.step.get_session_options().intra_op_num_threads == 1
    assert tr.bundle.encoder.get_session_options().intra_op_num_threads == default_threads()
    assert tr._solo is not None and tr._solo._session is None  # nothing made until a single recording comes
    one = tr.transcribe([wav])[0].text
    assert tr._solo._session is not None and tr._solo._session.get_session_options().intra_op_num_threads == 1
    both = [r.text for r in tr.transcribe([wav, wav])]
    assert both == [one, one] == [pinned.transcribe([wav])[0].text] * 2
