"""The command line as a new user meets it (issue 19's list): flags that take no value, `-` for
standard input, one --attention rule, epoch lines that stay with --no-progress, --version, and the
install line for torch that keeps to the CPU wheel."""

import subprocess
import sys

import pytest
from speech_toy import tiny_speech_bundle, tone_audio

from edge_s2s.cli.app import run


def _cli(capsys, args):
    rc = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("command", [["caption"], ["transcribe"], ["translate"], ["export"], ["train", "translate"],
                                     ["train", "babi"], ["info"]])
def test_help_shows_no_value_for_flags(capsys, command):
    rc, out, _ = _cli(capsys, [*command, "--help"])
    assert rc == 0 and "--help" in out and "<bool>" not in out


def test_version(capsys):
    from edge_s2s import __version__

    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"edge-s2s {__version__}"


def test_dash_reads_one_image_from_stdin(caption_bundle, shapes_data):
    img = (shapes_data["images"] / "red_circle_2.jpg").read_bytes()
    cmd = [sys.executable, "-m", "edge_s2s", "caption", "-b", str(caption_bundle)]
    piped = subprocess.run([*cmd, "-"], input=img, capture_output=True, timeout=120)
    direct = subprocess.run([*cmd, str(shapes_data["images"] / "red_circle_2.jpg")], capture_output=True, timeout=120)
    assert piped.returncode == 0 and piped.stdout == direct.stdout and piped.stdout.strip()
    empty = subprocess.run([*cmd, "-"], input=b"", capture_output=True, timeout=120)
    assert empty.returncode == 1 and empty.stderr.decode().strip().splitlines() == [
        "error: standard input is empty: pipe one image"]


def test_dash_reads_one_recording_from_stdin(tmp_path_factory, tmp_path):
    import soundfile as sf

    speech_bundle = tiny_speech_bundle(tmp_path_factory.mktemp("speech"))
    wav = tmp_path / "x.wav"
    sf.write(wav, tone_audio("012"), 8000)
    cmd = [sys.executable, "-m", "edge_s2s", "transcribe", "-b", str(speech_bundle)]
    piped = subprocess.run([*cmd, "-"], input=wav.read_bytes(), capture_output=True, timeout=120)
    direct = subprocess.run([*cmd, str(wav)], capture_output=True, timeout=120)
    assert piped.returncode == 0 and piped.stdout == direct.stdout


def test_attention_file_name_for_several_images_is_one_file_each(capsys, caption_bundle, shapes_data, tmp_path):
    imgs = [shapes_data["images"] / n for n in ("red_square_2.jpg", "blue_circle_2.jpg")]
    rc, _, err = _cli(capsys, ["caption", "-b", caption_bundle, *imgs, "--attention", tmp_path / "att.png"])
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["att-blue_circle_2.png", "att-red_square_2.png"]


def test_no_progress_keeps_the_epoch_lines(capsys, toy_tsv, tmp_path):
    rc, out, _ = _cli(capsys, ["train", "translate", "--data", toy_tsv, "--out", tmp_path / "r", "--epochs", "2",
                               "--emb-dim", "8", "--enc-hidden", "8", "--dec-hidden", "16", "--att-dim", "8",
                               "--max-length", "8", "--vocab-min-count", "1", "--no-progress"])
    assert rc == 0
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("epoch")] == ["epoch 1", "epoch 2"]


def test_the_torch_hint_keeps_to_the_cpu_wheel(capsys, tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "from edge_s2s.cli.app import run\n"
            f"sys.exit(run(['train', 'translate', '--data', {str(tmp_path / 'x.tsv')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1
    assert "PIP_CONSTRAINT=constraints.txt pip install -e \".[train]\"" in err[0]
