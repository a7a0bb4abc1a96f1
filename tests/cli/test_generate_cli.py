"""`edge-s2s train lm|pixels`, `export` and `generate` end to end, and generate's bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from paths import TEST_DATA
from PIL import Image

from edge_s2s.cli.app import run

KJV = TEST_DATA / "kjv-genesis-1-3.txt"


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


@pytest.fixture(scope="module")
def cli_lm(tmp_path_factory):
    """A character LM trained and exported through the CLI itself."""
    work = tmp_path_factory.mktemp("cli-lm")
    rc = run(["train", "lm", "--corpus", str(KJV), "--out", str(work / "run"), "--hidden", "32", "--emb-dim", "16",
              "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--no-progress"])
    assert rc == 0
    assert run(["export", str(work / "run"), "--out", str(work / "bundle")]) == 0
    return work / "bundle"


def test_streams_text_that_starts_with_the_prompt(cli_lm, capsys):
    capsys.readouterr()
    assert run(["generate", "--bundle", str(cli_lm), "--prompt", "And God ", "--seed", "7", "--max-length", "60",
                "--temperature", "0.8", "--top-p", "0.9"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("And God ") and len(out.strip()) > len("And God")
    assert run(["generate", "--bundle", str(cli_lm), "--prompt", "And God ", "--seed", "7", "--max-length", "60",
                "--temperature", "0.8", "--top-p", "0.9"]) == 0
    assert capsys.readouterr().out == out  # same seed, same text


def test_json_and_penalties(cli_lm, capsys):
    capsys.readouterr()
    assert run(["generate", "--bundle", str(cli_lm), "--n", "3", "--seed", "1", "--json", "--max-length", "40",
                "--repetition-penalty", "1.5", "--no-repeat-ngram", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        toks = json.loads(line)["tokens"]
        grams = [tuple(toks[i : i + 3]) for i in range(len(toks) - 2)]
        assert len(grams) == len(set(grams))


@pytest.mark.parametrize("args, words", [
    (["--prompt", "Zebra €"], "never saw: 'Z', '€'"),
    (["--n", "0"], "--n must be >= 1"),
    (["--condition", "3"], "unconditional"),
    (["--temperature", "0"], "temperature"),
    (["--out", "x.png"], "image bundles"),
])
def test_text_bad_input(cli_lm, capsys, args, words):
    capsys.readouterr()
    assert run(["generate", "--bundle", str(cli_lm), *args]) == 1
    out = capsys.readouterr()
    assert out.out == ""  # nothing half-printed before the error
    err = out.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0]


@pytest.fixture(scope="module")
def cli_digits(tmp_path_factory):
    work = tmp_path_factory.mktemp("cli-digits")
    rc = run(["train", "pixels", "--data", "digits", "--conditional", "--out", str(work / "run"), "--hidden", "32",
              "--epochs", "1", "--max-train", "320", "--lr", "0.01", "--no-progress"])
    assert rc == 0
    assert run(["export", str(work / "run"), "--out", str(work / "bundle")]) == 0
    return work / "bundle"


def test_writes_a_grid_of_samples(cli_digits, tmp_path, capsys):
    out = tmp_path / "sevens.png"
    assert run(["generate", "--bundle", str(cli_digits), "--condition", "7", "--n", "6", "--out", str(out),
                "--seed", "3", "--columns", "3"]) == 0
    assert "wrote 6 images of 7" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.size[0] < im.size[1] * 2 and im.size[0] > im.size[1]  # 3 columns x 2 rows


def test_terminal_preview_and_completion(cli_digits, tmp_path, capsys):
    src = tmp_path / "half.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 8, dtype=np.uint8), (8, 1))).save(src)
    capsys.readouterr()
    assert run(["generate", "--bundle", str(cli_digits), "--condition", "1", "--complete", str(src), "--rows", "4",
                "--seed", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines[0]) == 16 and len([x for x in lines if x]) == 8
    assert lines[0] == lines[1] == lines[2] == lines[3]  # the kept rows are the given gradient


@pytest.mark.parametrize("args, words", [
    (["--condition", "11"], "unknown condition 11"),
    (["--condition", "zebra"], "unknown condition 'zebra'"),
    ([], "needs a condition"),
    (["--condition", "1", "--n", "0"], "--n must be >= 1"),
    (["--condition", "1", "--out", "/nonexistent-dir/x.png"], "cannot write"),
    (["--condition", "1", "--prompt", "hi"], "image model"),
    (["--condition", "1", "--complete", "/nonexistent.png"], "no such file"),
])
def test_image_bad_input(cli_digits, capsys, args, words):
    capsys.readouterr()
    assert run(["generate", "--bundle", str(cli_digits), *args]) == 1
    assert words in _error(capsys)


def test_unwritable_out_directory_given_as_file(cli_digits, tmp_path, capsys):
    capsys.readouterr()
    assert run(["generate", "--bundle", str(cli_digits), "--condition", "1", "--out", str(tmp_path)]) == 1
    assert "cannot write" in _error(capsys)


def test_verify_info_and_profile_on_generator_bundles(cli_lm, cli_digits, capsys):
    for b in (cli_lm, cli_digits):
        capsys.readouterr()
        assert run(["verify", str(b)]) == 0, capsys.readouterr()
        assert run(["info", str(b)]) == 0
        assert "generate" in capsys.readouterr().out
        assert run(["profile", str(b), "--runs", "1", "--batch", "1,2", "--beam", "1,2", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["results"]
        assert len(rows) == 4 and all(r["tokens_per_s"] > 0 for r in rows)


def test_translate_and_caption_take_the_penalties(cli_bundle, caption_bundle, shapes_data, capsys):
    capsys.readouterr()
    assert run(["translate", "--bundle", str(cli_bundle), "--json", "--beam", "3", "--no-repeat-ngram", "1",
                "w4 w5 w4 w5 w6"]) == 0
    toks = json.loads(capsys.readouterr().out)["hypotheses"][0]["tokens"]
    assert len(toks) == len(set(toks))
    assert run(["translate", "--bundle", str(cli_bundle), "--repetition-penalty", "0", "w4"]) == 1
    assert "repetition_penalty must be > 0" in _error(capsys)
    img = sorted(p for p in Path(shapes_data["images"]).rglob("*") if p.suffix in (".png", ".jpg"))[0]
    assert run(["caption", "--bundle", str(caption_bundle), "--no-repeat-ngram", "2", "--json", str(img)]) == 0
    toks = json.loads(capsys.readouterr().out)["hypotheses"][0]["tokens"]
    grams = list(zip(toks, toks[1:]))
    assert len(grams) == len(set(grams))
