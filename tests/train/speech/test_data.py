"""The speech data builders on small generated fixtures (an FSDD-shaped folder, a Tux Paint stamp tree),
plus the real data when it is present."""

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge_s2s.runtime.media.audio import frame_levels_db, is_silence, load_audio, trim_silence
from edge_s2s.train.caption.tuxpaint import STAMPS_DIR
from edge_s2s.train.speech.data import (
    FSDD_ROOT,
    MANIFEST,
    NOISE_DB_RANGE,
    PAUSE_MIX,
    RECIPE,
    SpeechDataError,
    build_fsdd,
    build_tuxpaint,
    digit_strings,
    fsdd_index,
    isolated_digit_set,
    normalise_transcript,
    read_manifest,
    render_digits,
    rerender_digit_set,
    speaker_split,
    split_phrases,
    tuxpaint_languages,
    tuxpaint_phrases,
    utterance_from_row,
    write_digit_set,
    write_phrase_manifest,
)

RATE = 8000
SPEAKERS = ("alice", "bob", "theo")
TAKES = 7  # 0-4 are FSDD's official test takes (validation), 5-6 train


def _digit_wav(path: Path, digit: int, take: int, speaker: int) -> None:
    """A stand-in recording: 60 ms of quiet noise, a tone whose pitch names the digit, 60 ms of noise."""
    rng = np.random.default_rng(1000 * speaker + 10 * take + digit)
    n = int(RATE * (0.15 + 0.02 * take))
    t = np.arange(n) / RATE
    tone = 0.3 * np.sin(2 * np.pi * (400 + 150 * digit) * t) * np.hanning(n) ** 0.2
    pad = int(0.06 * RATE)
    x = np.concatenate([np.zeros(pad), tone, np.zeros(pad)]) + rng.normal(0, 10 ** (-62 / 20), n + 2 * pad)
    sf.write(str(path), x, RATE, subtype="PCM_16")


@pytest.fixture(scope="module")
def fsdd(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdd")
    rec = root / "recordings"
    rec.mkdir()
    for s, speaker in enumerate(SPEAKERS):
        for d in range(10):
            for take in range(TAKES):
                _digit_wav(rec / f"{d}_{speaker}_{take}.wav", d, take, s)
    sf.write(str(rec / "notes.wav"), np.zeros(80), RATE)  # not digit_speaker_take.wav: skipped
    return root


def test_fsdd_index(fsdd):
    index = fsdd_index(fsdd)
    assert index.speakers == list(SPEAKERS) and index.skipped == ["notes.wav"]
    assert all(index.count(s) == 10 * TAKES for s in SPEAKERS)
    takes = index.recordings["bob"]["7"]
    assert [r.take for r in takes] == list(range(TAKES)) and all(r.digit == "7" and r.speaker == "bob" for r in takes)
    assert fsdd_index(fsdd / "recordings").count("alice") == 10 * TAKES  # the wav folder itself works too


def test_fsdd_errors(tmp_path, fsdd):
    with pytest.raises(SpeechDataError, match="no such folder: get the Free Spoken Digit Dataset"):
        fsdd_index(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpeechDataError, match="holds no digit_speaker_take.wav"):
        fsdd_index(tmp_path / "empty")
    index = fsdd_index(fsdd)
    with pytest.raises(SpeechDataError, match="no speaker zed"):
        speaker_split(index, ("zed",))
    with pytest.raises(SpeechDataError, match="leave at least one for training"):
        speaker_split(index, SPEAKERS)


def test_speaker_split_holds_out_whole_speakers(fsdd):
    train, test = speaker_split(fsdd_index(fsdd))
    assert train.speakers == ["alice", "bob"] and test.speakers == ["theo"]  # theo by default
    assert test.count("theo") == 10 * TAKES and train.count("theo") == 0


def test_digit_strings(fsdd):
    index = fsdd_index(fsdd)
    utts = digit_strings(index, ["alice", "bob"], 300, np.random.default_rng(0))
    assert len(utts) == 300 and len({u.id for u in utts}) == 300
    kinds = {u.kind for u in utts}
    assert kinds == {"random", "phone", "pin"}
    for u in utts:
        assert re.fullmatch(r"\d( \d)*", u.transcript) and u.transcript.replace(" ", "") == u.digits
        assert 2 <= len(u.digits) <= 10 and len(u.sources) == len(u.digits) and len(u.pauses_ms) == len(u.digits) + 1
        assert all(50 <= p <= 300 for p in u.pauses_ms)
        assert all(p.name.split("_")[1] == u.speaker for p in u.sources)  # ONE speaker per string
        assert "".join(p.name[0] for p in u.sources) == u.digits  # each recording says its digit
        if u.kind == "phone":
            assert len(u.digits) in (7, 10) and u.digits[0] not in "01"
            if len(u.digits) == 10:
                assert u.digits[3] not in "01"
        if u.kind == "pin":
            assert len(u.digits) == 4
        for d in set(u.digits):  # a repeated digit uses different takes while there are enough
            takes = [p for p, c in zip(u.sources, u.digits) if c == d]
            assert len(set(takes)) == min(len(takes), TAKES)
    again = digit_strings(index, ["alice", "bob"], 300, np.random.default_rng(0))
    assert again == utts
    assert digit_strings(index, ["alice", "bob"], 300, np.random.default_rng(1)) != utts


def test_digit_string_ranges(fsdd):
    index = fsdd_index(fsdd)
    rng = np.random.default_rng(2)
    short = digit_strings(index, ["alice"], 50, rng, min_digits=5, max_digits=6)
    assert {u.kind for u in short} == {"random"} and {len(u.digits) for u in short} <= {5, 6}
    phones = digit_strings(index, ["alice"], 30, rng, min_digits=7, max_digits=7, kinds={"phone": 1.0})
    assert {len(u.digits) for u in phones} == {7}
    with pytest.raises(ValueError, match="no digit-string kind fits"):
        digit_strings(index, ["alice"], 5, rng, max_digits=3, kinds={"phone": 1.0, "pin": 1.0})
    no_val = index.select(takes=[])
    with pytest.raises(SpeechDataError, match="has no recording of digit"):
        digit_strings(no_val, ["alice"], 1, rng)


def test_render_joins_trimmed_recordings_with_quiet_pauses(fsdd):
    index = fsdd_index(fsdd)
    u = digit_strings(index, ["bob"], 1, np.random.default_rng(3), min_digits=4, max_digits=4)[0]
    audio = render_digits(u)
    clips = [np.array(trim_silence(load_audio(p, RATE)[0], RATE)) for p in u.sources]
    raw = [load_audio(p, RATE)[0].size for p in u.sources]
    assert all(c.size < r - 0.08 * RATE for c, r in zip(clips, raw))  # most of the 2 x 60 ms edges went
    pauses = [int(round(RATE * ms / 1000)) for ms in u.pauses_ms]
    assert audio.dtype == np.float32 and audio.size == sum(c.size for c in clips) + sum(pauses)
    pos = pauses[0]
    for k, clip in enumerate(clips):
        np.testing.assert_allclose(audio[pos: pos + clip.size], clip, atol=1e-7)  # the recording itself
        gap = audio[pos + clip.size: pos + clip.size + pauses[k + 1]]
        assert gap.size == pauses[k + 1] and np.any(gap != 0)  # noise, not digital zeros ...
        assert frame_levels_db(gap, RATE, 10.0).max() < -45  # ... at the recordings' quiet floor
        pos += clip.size + pauses[k + 1]
    assert np.array_equal(render_digits(u), audio)  # seeded


def test_write_digit_set_is_deterministic(fsdd, tmp_path):
    index = fsdd_index(fsdd)

    def build(out):
        return write_digit_set(out, digit_strings(index, ["alice", "theo"], 12, np.random.default_rng(7)))

    m1, m2 = build(tmp_path / "a"), build(tmp_path / "b")
    assert m1.name == m2.name == MANIFEST
    files1 = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files2 = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files1 == files2 and len(files1) == 13
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files1)
    rows = read_manifest(m1)
    assert len(rows) == 12
    for r in rows:
        info = sf.info(r["audio"])
        assert info.samplerate == RATE and info.subtype == "PCM_16" and abs(info.duration - r["duration"]) < 1e-3
        assert r["speaker"] in ("alice", "theo") and re.fullmatch(r"\d( \d)*", r["transcript"])
        assert len(r["sources"]) == len(r["transcript"].split())
        assert not is_silence(load_audio(r["audio"], 16000)[0], 16000)


def test_build_fsdd_keeps_speakers_and_takes_apart(fsdd, tmp_path):
    out = build_fsdd(fsdd, tmp_path / "digits", n_train=20, n_val=6, n_test=8, seed=5)
    rows = {split: read_manifest(path) for split, path in out.items()}
    assert {k: len(v) for k, v in rows.items()} == {"train": 20, "val": 6, "test": 8}
    take = lambda name: int(Path(name).stem.split("_")[2])  # noqa: E731
    assert {r["speaker"] for r in rows["test"]} == {"theo"}
    assert {r["speaker"] for r in rows["train"] + rows["val"]} <= {"alice", "bob"}
    assert all(take(s) >= 5 for r in rows["train"] for s in r["sources"])
    assert all(take(s) < 5 for r in rows["val"] for s in r["sources"])


def _gaps(audio: np.ndarray, u) -> list[np.ndarray]:
    """The pauses of a rendered string, between and around its trimmed recordings."""
    clips = [np.array(trim_silence(load_audio(p, RATE)[0], RATE)) for p in u.sources]
    pauses = [int(round(RATE * ms / 1000)) for ms in u.pauses_ms]
    out, pos = [audio[: pauses[0]]], pauses[0]
    for k, clip in enumerate(clips):
        out.append(audio[pos + clip.size: pos + clip.size + pauses[k + 1]])
        pos += clip.size + pauses[k + 1]
    assert pos == audio.size
    return out


def test_pause_kinds_mix_and_render(fsdd):
    """A pause mix gives every kind in about its share, seeded; each kind renders as it says."""
    index = fsdd_index(fsdd)
    utts = digit_strings(index, ["alice", "bob"], 300, np.random.default_rng(4), pause_mix=PAUSE_MIX)
    count = {k: sum(u.pause == k for u in utts) for k in ("zeros", "floor", "noise")}
    assert all(70 <= c <= 130 for c in count.values()), count
    levels = [u.pause_db for u in utts if u.pause == "noise"]
    assert all(NOISE_DB_RANGE[0] <= x <= NOISE_DB_RANGE[1] for x in levels) and len(set(levels)) > 50
    assert all(u.pause_db is None for u in utts if u.pause != "noise")
    assert digit_strings(index, ["alice", "bob"], 300, np.random.default_rng(4), pause_mix=PAUSE_MIX) == utts
    # the pause draw has its own stream: the strings themselves are those of a floor-only build
    plain = digit_strings(index, ["alice", "bob"], 300, np.random.default_rng(4))
    assert {u.pause for u in plain} == {"floor"}
    assert [replace(u, pause="floor", pause_db=None) for u in utts] == plain
    for kind in ("zeros", "noise"):
        u = next(u for u in utts[:40] if u.pause == kind)
        gaps = _gaps(render_digits(u), u)
        if kind == "zeros":
            assert all(g.size and not np.any(g) for g in gaps)  # exact digital silence
        else:
            rms = np.sqrt(np.mean(np.concatenate(gaps).astype(np.float64) ** 2))
            assert abs(20 * np.log10(rms) - u.pause_db) < 0.5
    with pytest.raises(ValueError, match="pause mix"):
        digit_strings(index, ["alice"], 2, np.random.default_rng(0), pause_mix={"silence": 1.0})


def test_build_fsdd_records_its_recipe_and_rerenders(fsdd, tmp_path):
    out = build_fsdd(fsdd, tmp_path / "a", n_train=60, n_val=6, n_test=8, seed=5)
    again = build_fsdd(fsdd, tmp_path / "b", n_train=60, n_val=6, n_test=8, seed=5)
    for split in out:
        assert out[split].read_bytes() == again[split].read_bytes()
    rows = {split: read_manifest(path) for split, path in out.items()}
    assert {r["pause"] for r in rows["train"]} == {"zeros", "floor", "noise"}
    assert {r["pause"] for r in rows["val"] + rows["test"]} == {"floor"}
    assert all(r["pause_db"] is None for r in rows["train"] if r["pause"] == "zeros")
    assert all(r["pause_db"] <= -45 for r in rows["train"] + rows["val"] if r["pause"] != "zeros")
    recipe = json.loads((tmp_path / "a" / RECIPE).read_text(encoding="utf-8"))
    assert recipe["seed"] == 5 and recipe["sizes"] == {"train": 60, "val": 6, "test": 8}
    assert recipe["test_speakers"] == ["theo"] and recipe["pause_mix"]["val"] == {"floor": 1.0}
    assert recipe["pause_mix"]["train"] == pytest.approx(PAUSE_MIX)
    # a row's recipe renders its wav again, byte for byte; other pauses change only the pauses
    r = rows["test"][0]
    u = utterance_from_row(r, fsdd)
    assert u.transcript == r["transcript"] and u.pause == "floor"
    floor = rerender_digit_set(out["test"], tmp_path / "floor", "floor", root=fsdd)
    assert floor.read_bytes() == out["test"].read_bytes()
    assert all(Path(x["audio"]).read_bytes() == Path(y["audio"]).read_bytes()
               for x, y in zip(read_manifest(floor), rows["test"]))
    zeros = read_manifest(rerender_digit_set(out["test"], tmp_path / "zeros", "zeros", root=fsdd, limit=3))
    assert len(zeros) == 3 and [z["transcript"] for z in zeros] == [x["transcript"] for x in rows["test"][:3]]
    x = load_audio(zeros[0]["audio"], RATE)[0]
    assert not np.any(_gaps(x, u)[0]) and x.size == load_audio(r["audio"], RATE)[0].size
    with pytest.raises(SpeechDataError, match="no digit-string recipe"):
        utterance_from_row({k: v for k, v in r.items() if k != "seed"}, fsdd)
    with pytest.raises(ValueError, match="pause_db"):
        rerender_digit_set(out["test"], tmp_path / "bad", "noise", root=fsdd)


def test_read_manifest_errors(tmp_path):
    with pytest.raises(SpeechDataError, match="no such manifest"):
        read_manifest(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"audio": "a.wav", "transcript": "1 2"}\n{"audio": "b.wav"}\n', encoding="utf-8")
    with pytest.raises(SpeechDataError, match=r"bad.jsonl:2 is not a manifest row"):
        read_manifest(bad)


# ---------------------------------------------------------------- Tux Paint


def _ogg(path: Path, freq: float, seconds: float = 0.4) -> None:
    t = np.arange(int(22050 * seconds)) / 22050
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * freq * t), 22050, format="OGG", subtype="VORBIS")


@pytest.fixture(scope="module")
def stamps(tmp_path_factory):
    root = tmp_path_factory.mktemp("stamps")
    texts = {
        "animals/cat": "A cat.\nes.utf8=Un gato.\nfr.utf8=Un  \u00ab chat \u00bb noir.\nfr_CA.utf8=Un minou.\n",
        "animals/dog": "A dog.\nfr.utf8=Un chien, c\u2019est tout !\n",
        "animals/fish": "A fish.\nes.utf8=Un pez.\n",  # no French line: its French recording is skipped
        "food/apple": "An apple.\nfr.utf8=Une pomme.\n",
        "food/apple-green": "A green apple.\nfr.utf8=Une pomme.\n",  # the same sentence as apple
        "money/quarter": "A quarter.\nfr.utf8=Une pi\u00e8ce de 25 cents (0,25 $).\n",
        "town/house": "A house.\nfr.utf8=Une maison.\n",
        "town/tree": "A tree.\nfr.utf8=Un arbre.\n",
    }
    for i, (stem, text) in enumerate(texts.items()):
        (root / stem).parent.mkdir(parents=True, exist_ok=True)
        (root / f"{stem}.txt").write_text(text, encoding="utf-8")
        _ogg(root / f"{stem}_desc_fr.ogg", 300 + 40 * i)
    _ogg(root / "animals/cat_desc_es.ogg", 500)
    _ogg(root / "animals/bird_desc_fr.ogg", 700)  # no .txt at all: skipped
    _ogg(root / "animals/cat.ogg", 900)  # the stamp's sound effect, not a description
    return root


def test_tuxpaint_phrases(stamps):
    phrases = tuxpaint_phrases(stamps, "fr")
    by_stamp = {p.stamp: p for p in phrases}
    assert sorted(by_stamp) == ["animals/cat", "animals/dog", "food/apple", "food/apple-green", "money/quarter",
                                "town/house", "town/tree"]
    cat = by_stamp["animals/cat"]
    assert cat.text == 'Un " chat " noir.' and cat.transcript == "un chat noir" and cat.lang == "fr"
    assert cat.audio == stamps / "animals/cat_desc_fr.ogg"
    assert by_stamp["animals/dog"].transcript == "un chien c'est tout"
    assert by_stamp["money/quarter"].transcript == "une pièce de 25 cents 0 25"
    es = tuxpaint_phrases(stamps, "es")
    assert [(p.stamp, p.transcript) for p in es] == [("animals/cat", "un gato")]
    x, info = load_audio(cat.audio, 16000)
    assert info.format == "OGG" and x.size == round(0.4 * 16000)


def test_tuxpaint_languages_and_errors(stamps, tmp_path):
    assert tuxpaint_languages(stamps) == {"es": (1, 1), "fr": (9, 7)}
    with pytest.raises(SpeechDataError, match="apt-get install -y tuxpaint-stamps-default"):
        tuxpaint_phrases(tmp_path / "no-stamps", "fr")
    with pytest.raises(SpeechDataError, match=r"no 'de' recordings with a transcript \(languages: es \(1\), fr \(7\)"):
        tuxpaint_phrases(stamps, "de")


def test_split_phrases_holds_out_whole_sentences(stamps):
    phrases = tuxpaint_phrases(stamps, "fr")
    split = split_phrases(phrases, seed=3)
    assert sorted(p.stamp for ps in split.values() for p in ps) == sorted(p.stamp for p in phrases)
    assert all(split[k] for k in ("train", "val", "test"))
    where = {p.stamp: k for k, ps in split.items() for p in ps}
    assert where["food/apple"] == where["food/apple-green"]  # "une pomme" twice: never on both sides
    assert split_phrases(phrases, seed=3) == split


def test_write_phrase_manifest(stamps, tmp_path):
    phrases = tuxpaint_phrases(stamps, "fr")
    rows = read_manifest(write_phrase_manifest(tmp_path / "fr.jsonl", phrases))
    assert [r["transcript"] for r in rows] == [p.transcript for p in phrases]
    assert all(abs(r["duration"] - 0.4) < 0.01 and r["speaker"] == "tuxpaint-fr" for r in rows)
    assert all(Path(r["audio"]).is_file() for r in rows)


def test_build_tuxpaint_writes_three_disjoint_splits(stamps, tmp_path):
    out = build_tuxpaint(stamps, tmp_path / "tux-fr", "fr", seed=3)
    assert list(out) == ["train", "val", "test"]
    assert all(p == tmp_path / "tux-fr" / k / MANIFEST for k, p in out.items())
    rows = {k: read_manifest(p) for k, p in out.items()}
    assert all(rows.values()) and sum(len(r) for r in rows.values()) == 7
    texts = {k: {r["transcript"] for r in rs} for k, rs in rows.items()}
    assert not texts["train"] & texts["val"] and not texts["train"] & texts["test"] and not texts["val"] & texts["test"]
    assert {r["stamp"] for rs in rows.values() for r in rs} >= {"food/apple", "food/apple-green"}
    assert build_tuxpaint(stamps, tmp_path / "again", "fr", seed=3)["test"].read_bytes() == out["test"].read_bytes()
    with pytest.raises(SpeechDataError, match="no 'de' recordings"):
        build_tuxpaint(stamps, tmp_path / "de", "de")
    assert not (tmp_path / "de").exists()


def test_normalise_transcript():
    assert normalise_transcript("L\u2019eau, c'est \u00abbon\u00bb !") == "l'eau c'est bon"
    assert normalise_transcript("Vingt-cinq -- cents... 'oui'") == "vingt-cinq cents oui"
    assert normalise_transcript("Caf\u0065\u0301 NO\u00cbL_2") == "café noël 2"  # NFC; underscores are not letters
    assert normalise_transcript(" ?! ") == ""


# ---------------------------------------------------------------- the real data, when present


@pytest.mark.skipif(not FSDD_ROOT.is_dir(), reason="../shared/data/fsdd is not present")
def test_real_fsdd(tmp_path):
    index = fsdd_index(FSDD_ROOT)
    assert index.speakers == ["george", "jackson", "nicolas", "theo", "yweweler"]
    assert all(index.count(s) == 500 for s in index.speakers) and not index.skipped
    train, test = speaker_split(index)
    utts = digit_strings(train, train.speakers, 3, np.random.default_rng(0))
    rows = read_manifest(write_digit_set(tmp_path, utts))
    for r in rows:
        x, info = load_audio(r["audio"], 16000)
        assert not is_silence(x, 16000) and 0.3 * len(r["transcript"].split()) < info.duration < 10


@pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="tuxpaint-stamps-default is not installed")
def test_real_tuxpaint():
    langs = tuxpaint_languages()
    assert langs["fr"][1] > 800 and langs["es"][1] > 800
    phrases = tuxpaint_phrases(lang="fr")
    assert len(phrases) == langs["fr"][1]
    split = split_phrases(phrases)
    test_sentences = {p.transcript for p in split["test"]}
    assert test_sentences and not test_sentences & {p.transcript for p in split["train"]}


def test_speech_silence_check_script(fsdd, tmp_path):
    """scripts/speech_silence_check.py: the test strings three ways, a row per bundle and condition, one-line
    errors for a wrong bundle or limit (the shipped bundle decodes the stand-in tones; only the shape is checked)."""
    import importlib.util
    import sys

    from paths import REPO

    from edge_s2s.runtime.tasks.transcriber import default_transcriber_path

    sys.path.insert(0, str(REPO / "scripts"))  # as `python scripts/speech_silence_check.py` has it
    spec = importlib.util.spec_from_file_location("speech_silence_check", REPO / "scripts" / "speech_silence_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    test = build_fsdd(fsdd, tmp_path / "digits", n_train=3, n_val=3, n_test=4, seed=5)["test"]
    out = tmp_path / "silence.md"
    args = ["--test", str(test), "--fsdd", str(fsdd), "--limit", "2", "--out", str(out), "--audio", str(tmp_path / "a")]
    assert check.main([*args, "--bundle", f"a={default_transcriber_path()}", "--bundle",
                       f"b={default_transcriber_path()}"]) == 0
    res = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert res["strings"] == 2 and [(r["model"], r["condition"]) for r in res["rows"]] == [
        (m, c) for m in "ab" for c in ("digital zeros", "recordings' floor", "-90 dBFS noise")]
    a = {r["condition"]: {**r, "model": ""} for r in res["rows"] if r["model"] == "a"}
    b = {r["condition"]: {**r, "model": ""} for r in res["rows"] if r["model"] == "b"}
    assert a == b  # the same bundle twice reads the same audio the same way
    assert all(0 <= r["wer"] and 0 <= r["string_accuracy"] <= 1 for r in res["rows"])
    zeros = read_manifest(tmp_path / "a" / "zeros" / MANIFEST)
    assert {r["pause"] for r in zeros} == {"zeros"} and len(zeros) == 2
    page = out.read_text(encoding="utf-8")
    assert page.startswith("## Pauses of digital silence") and "| a | greedy |" in page and "| b | greedy |" in page
    for bad, msg in ((["--bundle", f"x={tmp_path}"], "no bundle there"), (["--limit", "-1"], "--limit must be"),
                     (["--bundle", "nolabel"], "is not LABEL=PATH")):
        with pytest.raises(SystemExit) as e:
            check.main([*args[:6], *bad])
        assert msg in str(e.value) and "\n" not in str(e.value)


def test_isolated_digit_set_lists_every_recording_of_the_speakers(fsdd, tmp_path):
    m = isolated_digit_set(fsdd_index(fsdd), ["theo"], tmp_path / "iso" / "manifest.jsonl")
    rows = read_manifest(m)
    assert len(rows) == 10 * TAKES and {r["speaker"] for r in rows} == {"theo"}
    for r in rows:
        digit, speaker, take = Path(r["audio"]).stem.split("_")
        assert r["transcript"] == digit and speaker == "theo" and r["kind"] == "isolated"
        assert Path(r["audio"]).is_absolute() and abs(sf.info(r["audio"]).duration - r["duration"]) < 1e-3
    with pytest.raises(SpeechDataError, match="no speaker"):
        isolated_digit_set(fsdd_index(fsdd), ["nobody"], tmp_path / "x.jsonl")


def test_isolated_digit_set_keeps_or_drops_takes(fsdd, tmp_path):
    """Training speakers' takes split as their strings are: some takes train, the others validate."""
    idx = fsdd_index(fsdd)
    keep = isolated_digit_set(idx, ["alice", "bob"], tmp_path / "val" / "manifest.jsonl", takes=[0, 1])
    drop = isolated_digit_set(idx, ["alice", "bob"], tmp_path / "train" / "manifest.jsonl", exclude_takes=[0, 1])
    take = lambda r: int(Path(r["audio"]).stem.split("_")[2])  # noqa: E731
    kept, dropped = read_manifest(keep), read_manifest(drop)
    assert {take(r) for r in kept} == {0, 1} and len(kept) == 2 * 10 * 2
    assert {take(r) for r in dropped} == set(range(2, TAKES)) and len(dropped) == 2 * 10 * (TAKES - 2)
    assert not {r["audio"] for r in kept} & {r["audio"] for r in dropped}
