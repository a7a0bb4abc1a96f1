"""The runtime decodes a bundle in a process where importing torch or onnx fails."""

import subprocess
import sys
import textwrap


def test_runtime_without_torch_or_onnx(model_bundle):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        from edge_s2s.runtime import Beam, Greedy, Seq2Seq
        for loop in ("compiled", "reference"):
            m = Seq2Seq.load({str(model_bundle)!r}, loop=loop)
            r = m.generate(["w4 w5", "w6"], search=Beam(3, n_best=2))
            assert len(r) == 2 and len(r[0].hypotheses) == 2
            assert m.generate(["w4"], search=Greedy())[0].text is not None
        assert not any(k.startswith(("torch", "onnx.")) or k == "onnx" for k, v in sys.modules.items() if v is not None)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_captioner_and_caption_cli_without_torch_or_onnx(tmp_path):
    """The shipped default captioner, through the API and the CLI, with torch and onnx blocked."""
    from PIL import Image

    img = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(img)
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        from edge_s2s.runtime import Beam, Captioner
        r = Captioner.load().caption([{str(img)!r}], search=Beam(3))
        assert r[0].text and r[0].attention.shape[1] == 49 + 5 and len(r[0].labels) == 5  # regions + label slots
        from edge_s2s.cli.app import run
        assert run(["caption", {str(img)!r}]) == 0
        assert not any(k.startswith(("torch", "onnx.")) or k == "onnx" for k, v in sys.modules.items() if v is not None)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"


def test_generators_and_generate_cli_without_torch_or_onnx(lm_bundle, digits_bundle, tmp_path):
    """Text and image generators, API and CLI (streaming, PNG grid), with torch and onnx blocked."""
    grid = tmp_path / "grid.png"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        from edge_s2s.runtime import Sample
        from edge_s2s.runtime.tasks.generator import Generator
        lm = Generator.load({str(lm_bundle)!r})
        assert lm.generate(["And "], search=Sample(seed=1, repetition_penalty=1.2), max_length=30)[0].text
        assert lm.score(["And God"])[0] < 0
        from edge_s2s.cli.app import run
        assert run(["generate", "--bundle", {str(lm_bundle)!r}, "--prompt", "And ", "--seed", "1",
                    "--max-length", "30"]) == 0
        assert run(["generate", "--bundle", {str(digits_bundle)!r}, "--condition", "3", "--n", "4",
                    "--out", {str(grid)!r}, "--seed", "1"]) == 0
        assert not any(k.startswith(("torch", "onnx.")) or k == "onnx" for k, v in sys.modules.items() if v is not None)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"
    assert grid.stat().st_size > 0


def test_memory_network_and_answer_cli_without_torch_or_onnx(memn2n_bundle, tmp_path):
    """A memory-network bundle, through MemoryNetwork, `answer`, `info` and `verify`, with torch and onnx blocked."""
    story = tmp_path / "story.txt"
    story.write_text("Mary moved to the bathroom.\nJohn went to the hallway.\n", encoding="utf-8")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        from edge_s2s.runtime.tasks.memory_network import MemoryNetwork
        text = open({str(story)!r}, encoding="utf-8").read()
        a = MemoryNetwork.load({str(memn2n_bundle)!r}).answer(text, "Where is Mary?")
        assert a.text and a.attention.shape[1] == 2
        from edge_s2s.cli.app import run
        b = {str(memn2n_bundle)!r}
        assert run(["answer", "--bundle", b, "--story", {str(story)!r}, "Where is Mary?"]) == 0
        assert run(["info", b]) == 0 and run(["verify", b]) == 0
        assert not any(k.startswith(("torch", "onnx.")) or k == "onnx" for k, v in sys.modules.items() if v is not None)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"


def test_audio_and_features_without_torch_or_onnx(tmp_path):
    """runtime/media/audio.py and runtime/media/features.py read a recording and make log-mels with torch and onnx blocked."""
    import numpy as np
    import soundfile as sf

    wav = tmp_path / "tone.wav"
    sf.write(str(wav), 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000), 8000, subtype="PCM_16")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        from edge_s2s.runtime.media.audio import is_silence, load_audio
        from edge_s2s.runtime.media.features import FeatureConfig, log_mel
        x, info = load_audio({str(wav)!r}, 16000)
        assert x.size == 16000 and not is_silence(x, 16000)
        assert log_mel(x, FeatureConfig()).shape == (98, 80)
        assert not any(k.startswith(("torch", "onnx.")) or k == "onnx" for k, v in sys.modules.items() if v is not None)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"


def test_transcriber_and_transcribe_cli_without_torch_or_onnx(tmp_path_factory):
    """A speech bundle, through Transcriber and `transcribe --json`, with torch and onnx blocked."""
    import soundfile as sf
    from speech_toy import RATE, tiny_speech_bundle, tone_audio

    bundle = tiny_speech_bundle(tmp_path_factory.mktemp("speech"))
    wav = tmp_path_factory.mktemp("audio") / "call.wav"
    sf.write(str(wav), tone_audio("0123"), RATE, subtype="PCM_24")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        from edge_s2s.runtime import Beam, Transcriber
        r = Transcriber.load({str(bundle)!r}).transcribe([{str(wav)!r}], search=Beam(3))
        assert r[0].ok and r[0].hypotheses and len(r[0].token_times()) == len(r[0].hypotheses[0].tokens)
        from edge_s2s.cli.app import run
        assert run(["transcribe", "--bundle", {str(bundle)!r}, {str(wav)!r}, "--json"]) == 0
        assert not any(k.startswith(("torch", "onnx.")) or k == "onnx" for k, v in sys.modules.items() if v is not None)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"


def test_plot_learning_curves_without_torch_or_onnx(tmp_path):
    """`edge-s2s plot` draws a run's curves in a runtime-only install (its drawing and log reading
    live in runtime/, not train/)."""
    import json

    from PIL import Image

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "step": 10 * e, "train_loss": 3.0 / e,
                                                           "val_loss": 3.2 / e, "val_bleu": 5.0 * e}) + "\n"
                                               for e in (1, 2, 3)))
    (run / "steps.jsonl").write_text("".join(json.dumps({"step": s, "epoch": 1 + (s - 1) // 10, "loss": 4.0 / s,
                                                         "tokens": 100, "tokens_per_s": 1000.0, "lr": 0.01,
                                                         "time": 0.1 * s}) + "\n" for s in range(1, 31)))
    out = tmp_path / "curves.png"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        from edge_s2s.cli.app import run
        assert run(["plot", {str(run)!r}, "--out", {str(out)!r}]) == 0
        assert not any(k.startswith(("torch", "onnx.")) or k == "onnx" for k, v in sys.modules.items() if v is not None)
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "ok"
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 200
