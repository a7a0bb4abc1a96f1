"""`edge-s2s transcribe`: the same transcripts as the API, --json with per-character times, and the
bad-input list (one `error:` line each, the rest still transcribed, exit 1; silence is a note)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from speech_toy import (  # noqa: E402
    RATE,
    bundle_with_rate,
    digit_groups,
    digit_string_bundle,
    tiny_speech_bundle,
    tone_audio,
)

from edge_s2s.cli.app import run  # noqa: E402
from edge_s2s.runtime.search import Beam, Greedy  # noqa: E402
from edge_s2s.runtime.tasks.transcriber import SILENCE_NOTE, Transcriber  # noqa: E402


@pytest.fixture(scope="session")
def speech_bundle(tmp_path_factory) -> Path:
    return tiny_speech_bundle(tmp_path_factory.mktemp("speech"))


@pytest.fixture()
def clips(tmp_path) -> list[Path]:
    out = []
    for i, digits in enumerate(("01", "3", "2130")):
        p = tmp_path / f"clip{i}.wav"
        sf.write(str(p), tone_audio(digits), RATE, subtype="PCM_16")
        out.append(p)
    return out


def _cli(capsys, args):
    rc = run(args)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("beam", [1, 5])
def test_json_matches_the_api(capsys, speech_bundle, clips, beam):
    rc, out, err = _cli(capsys, ["transcribe", "--bundle", str(speech_bundle), *map(str, clips), "--beam", str(beam),
                                 "--json"])
    assert rc == 0, err
    objs = [json.loads(line) for line in out.splitlines()]
    search = Beam(beam) if beam > 1 else Greedy()
    api = Transcriber.load(speech_bundle).transcribe([str(p) for p in clips], search=search)
    assert [o["file"] for o in objs] == [str(p) for p in clips]
    for o, r in zip(objs, api):
        assert o["text"] == r.text and o["score"] == pytest.approx(r.score, abs=1e-5)
        assert o["tokens"] == r.hypotheses[0].tokens and o["times"] == r.token_times()
        assert len(o["times"]) == len(o["tokens"]) and all(0 <= t <= o["duration"] for t in o["times"])


def test_plain_output_one_file_and_many(capsys, speech_bundle, clips):
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(speech_bundle), str(clips[0])])
    assert rc == 0 and "\t" not in out and len(out.splitlines()) == 1
    want = Transcriber.load(speech_bundle).transcribe([str(clips[0])])[0].text
    assert out.rstrip("\n") == want
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(speech_bundle), str(clips[0].parent), "--batch-size", "2"])
    lines = out.splitlines()
    assert rc == 0 and [x.split("\t")[0] for x in lines] == [str(p) for p in clips]


def test_bad_files_are_one_line_each_and_the_rest_transcribed(capsys, speech_bundle, clips, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("call me at 555\n")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    long = tmp_path / "long.wav"
    sf.write(str(long), np.tile(tone_audio("0123"), 6), RATE)
    files = [clips[0], text, empty, long, clips[1]]
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(speech_bundle), *map(str, files)])
    assert rc == 1
    assert [x.split("\t")[0] for x in out.splitlines()] == [str(clips[0]), str(clips[1])]
    errors = err.splitlines()
    assert len(errors) == 4 and all(x.startswith("error: ") for x in errors)
    assert errors[0].startswith(f"error: {text}") and "not audio" in errors[0]
    assert errors[1].startswith(f"error: {empty}") and "empty" in errors[1]
    assert errors[2].startswith(f"error: {long}") and "limit of 3 s" in errors[2]
    assert "3 of 5" in errors[3] and "Traceback" not in err


def test_silence_is_an_empty_transcript_and_one_note(capsys, speech_bundle, tmp_path):
    quiet = tmp_path / "quiet.wav"
    sf.write(str(quiet), np.zeros(RATE, np.float32), RATE, subtype="PCM_16")
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(speech_bundle), str(quiet)])
    assert rc == 0 and out == "\n"
    assert err.splitlines() == [f"note: {quiet}: {SILENCE_NOTE}"]
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(speech_bundle), str(quiet), "--json"])
    o = json.loads(out)
    assert rc == 0 and o["text"] == "" and o["note"] == SILENCE_NOTE and o["times"] == [] and err.count("note:") == 1


@pytest.mark.parametrize("args,match", [
    (["transcribe"], "no recordings given"),
    (["transcribe", "-b", "BUNDLE"], "no recordings given"),
    (["transcribe", "-b", "BUNDLE", "x.wav", "--beam", "0"], "--beam"),
])
def test_usage_mistakes_are_one_line(capsys, speech_bundle, args, match):
    rc, out, err = _cli(capsys, [str(speech_bundle) if a == "BUNDLE" else a for a in args])
    assert rc == 1 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and match in err


def test_attention_picture_one_file_and_many(capsys, speech_bundle, clips, tmp_path):
    from PIL import Image

    out_png = tmp_path / "out.png"
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(speech_bundle), str(clips[0]), "--attention", str(out_png)])
    assert rc == 0, err
    with Image.open(out_png) as im:
        assert im.format == "PNG" and im.size[0] > 200
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(speech_bundle), *map(str, clips), "--beam", "3",
                                 "--attention", str(tmp_path / "att.png")])
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.glob("att-*.png")) == [f"att-{p.stem}.png" for p in clips]
    assert not (tmp_path / "att.png").exists()


def test_attention_picture_to_a_missing_directory_is_one_line(capsys, speech_bundle, clips, tmp_path):
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(speech_bundle), str(clips[0]), "--attention",
                                 str(tmp_path / "nope" / "a.png")])
    assert rc == 1 and out == "" and len(err.splitlines()) == 1 and "does not exist" in err


def test_a_long_recording_is_split_and_says_so(capsys, speech_bundle, tmp_path):
    pause = np.zeros(int(0.4 * RATE), np.float32)
    x = np.concatenate([tone_audio(d) if i % 2 == 0 else pause for i, d in enumerate("0123" "3210" "1302" "2")])
    long = tmp_path / "long.wav"
    sf.write(str(long), x, RATE, subtype="FLOAT")
    assert x.size / RATE > 3.0
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(speech_bundle), str(long), "--json"])
    o = json.loads(out)
    assert rc == 0 and len(o["pieces"]) >= 2 and "split at pauses" in o["note"]
    assert len(o["times"]) == len(o["tokens"]) and all(0 <= t <= o["duration"] for t in o["times"])
    assert o["pieces"][0][0] == 0 and all(a[1] == b[0] for a, b in zip(o["pieces"], o["pieces"][1:]))
    assert err.splitlines() == [f"note: {long}: {o['note']}"]


def test_no_recordings_names_an_example_without_a_bundle(capsys):
    """The default model needs no --bundle: the usage line must not ask for one."""
    rc, out, err = _cli(capsys, ["transcribe"])
    assert rc == 1 and out == "" and "edge-s2s transcribe call.wav" in err and "--bundle" not in err


@pytest.fixture(scope="session")
def strings_bundle(tmp_path_factory) -> Path:
    return digit_string_bundle(tmp_path_factory.mktemp("strings"))


def test_a_cut_transcript_warns_on_stderr_and_in_json_and_strict_fails(capsys, strings_bundle, tmp_path):
    slow = bundle_with_rate(strings_bundle, tmp_path / "slow", 0.5)
    wav = tmp_path / "five.wav"
    sf.write(str(wav), tone_audio("30121"), RATE, subtype="FLOAT")
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(slow), str(wav)])
    assert rc == 0 and len(out.splitlines()) == 1
    assert len(err.splitlines()) == 1 and err.startswith(f"warning: {wav}: stopped at the step limit of ")
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(slow), str(wav), "--json"])
    o = json.loads(out)
    assert rc == 0 and o["warning"] in err and "step limit" in o["warning"]
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(slow), str(wav), "--strict"])
    assert rc == 1 and err.splitlines()[-1].startswith("error: 1 of 1 transcripts stopped at their step limit")
    # the recorded rate: no cut, no warning, and --strict passes
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(strings_bundle), str(wav), "--json", "--strict"])
    assert rc == 0 and "warning" not in json.loads(out) and err == ""


def test_a_long_digit_string_is_split_and_nothing_is_cut(capsys, strings_bundle, tmp_path):
    wav = tmp_path / "long.wav"
    sf.write(str(wav), digit_groups("0123012301230123012301230123"[:20]), RATE, subtype="FLOAT")
    rc, out, err = _cli(capsys, ["transcribe", "-b", str(strings_bundle), str(wav), "--json"])
    o = json.loads(out)
    assert rc == 0 and "warning" not in o and len(o["pieces"]) == 4 and len(o["text"].split()) == 4
    assert err.splitlines() == [f"note: {wav}: {o['note']}"]
    assert o["times"] == sorted(o["times"])
