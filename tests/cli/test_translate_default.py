"""The default translator shipped in the package: `edge-s2s translate "Wie spät ist es?"` with no --bundle,
lines on standard input one per line, and `Translator.load()` with no path, in a process where torch and
onnx cannot be imported."""

import io
import json
import subprocess
import sys
import textwrap

import pytest

from edge_s2s.cli.app import run
from edge_s2s.runtime.bundle import shipped_bundle
from edge_s2s.runtime.manifest import Manifest

SENTENCES = ["Wie spät ist es?", "Das Haus ist sehr groß.", "Ich habe keine Zeit."]


def test_the_default_bundle_is_a_subword_german_english_translator():
    path = shipped_bundle("translator")
    m = Manifest.load(path)
    assert m.task == "translate" and m.preprocessing["tokenizer"] == "sentencepiece"
    assert m.files[m.preprocessing["sentencepiece_model"]]  # the tokenizer is checksummed
    assert sum(p.stat().st_size for p in path.iterdir()) <= 25_000_000
    assert m.metrics["test"]["greedy"]["bleu"] > 0  # the held-out score travels with the model


def test_no_flag_translates_arguments_and_stdin_lines(capsys, monkeypatch):
    assert run(["translate", *SENTENCES]) == 0
    out = capsys.readouterr()
    lines = out.out.rstrip("\n").split("\n")
    assert len(lines) == len(SENTENCES) and all(ln.strip() for ln in lines) and "Traceback" not in out.err
    assert not any("<unk>" in ln or "▁" in ln or "⁇" in ln for ln in lines), lines
    assert sum(ln[:1].isupper() for ln in lines) >= 2  # cased output, as trained
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(("\n".join(SENTENCES) + "\n").encode("utf-8"))))
    assert run(["translate"]) == 0
    assert capsys.readouterr().out.rstrip("\n").split("\n") == lines  # one per line, the same answers
    assert run(["translate", "--bundle", str(shipped_bundle("translator")), "--json", SENTENCES[0]]) == 0
    assert json.loads(capsys.readouterr().out)["hypotheses"][0]["text"] == lines[0]


def test_stream_prints_what_the_full_decode_prints(capsys):
    assert run(["translate", SENTENCES[1]]) == 0
    full = capsys.readouterr().out
    assert run(["translate", "--stream", SENTENCES[1]]) == 0
    assert capsys.readouterr().out == full


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_input_is_one_line(capsys, text):
    assert run(["translate", text]) != 0
    err = capsys.readouterr().err
    assert "empty" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_golden_cases_verify(capsys):
    assert run(["verify", str(shipped_bundle("translator"))]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_default_translator_without_torch_or_onnx():
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        from edge_s2s.runtime import Beam, Translator
        r = Translator.load().generate({SENTENCES!r}, search=Beam(4))
        assert all(x.hypotheses[0].text for x in r)
        assert not any(k.startswith(("torch", "onnx.")) or k == "onnx" for k, v in sys.modules.items() if v is not None)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"


def test_a_translation_cut_at_the_limit_says_so(capsys):
    assert run(["translate", "--max-length", "2", SENTENCES[1]]) == 0
    out = capsys.readouterr()
    assert out.out.strip() and "input 1: the translation stopped at the limit of 2 tokens" in out.err
    assert run(["translate", SENTENCES[0]]) == 0
    assert "warning" not in capsys.readouterr().err
