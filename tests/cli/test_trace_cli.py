"""`generate --trace` / `translate --trace` and `plot-trace`: files written, and bad input as one line."""

import json

import numpy as np
import pytest
from ntm_copy import SLOTS, copy_bundle  # noqa: E402
from PIL import Image

from edge_s2s.cli.app import run  # noqa: E402
from edge_s2s.runtime.search import Beam  # noqa: E402
from edge_s2s.runtime.tasks.generator import Generator  # noqa: E402
from edge_s2s.runtime.text import detokenize  # noqa: E402
from edge_s2s.runtime.tools.trace import load_trace  # noqa: E402

PROMPT = "79 83 c1 f3"


@pytest.fixture(scope="module")
def ntm_dir(tmp_path_factory):
    return copy_bundle(tmp_path_factory)[1]


def _error(capsys) -> str:
    out = capsys.readouterr()
    assert out.out == ""  # nothing half-printed before the error
    err = out.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_greedy_stream_trace_and_plot(ntm_dir, tmp_path, capsys):
    capsys.readouterr()
    npz, png = tmp_path / "t.npz", tmp_path / "memory.png"
    assert run(["generate", "-b", str(ntm_dir), "--prompt", PROMPT, "--greedy", "--trace", str(npz)]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(PROMPT) and "plot-trace" in out.err
    tr = load_trace(npz)
    words = out.out.split()
    assert tr.tokens[: len(words)] == words  # the printed output is what was traced
    assert tr.prefix_length == 4 and tr.tokens[:4] == PROMPT.split()
    assert set(tr.tensors) == {"read_w", "write_w"} and tr.tensors["write_w"].shape[1:] == (1, SLOTS)
    assert run(["plot-trace", str(npz), "--out", str(png)]) == 0
    assert "2 panels" in capsys.readouterr().out
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] >= 4 * tr.steps and im.size[1] >= 2 * 4 * SLOTS


def test_beam_trace_is_the_best_hypothesis_with_memory(ntm_dir, tmp_path, capsys):
    npz = tmp_path / "b.npz"
    assert run(["generate", "-b", str(ntm_dir), "--prompt", PROMPT, "--beam", "3", "--json", "--trace", str(npz),
                "--trace-memory"]) == 0
    tr = load_trace(npz)
    gen = Generator.load(ntm_dir)
    best = gen.generate([PROMPT], search=Beam(size=3))[0].hypotheses[0]
    assert tr.ids[: len(best.ids)] == best.ids and tr.log_prob == pytest.approx(best.log_prob, abs=1e-4)
    assert {"ntm_memory", "read_w", "write_w", "ctrl_h"} <= set(tr.tensors)
    png = tmp_path / "mem.png"
    capsys.readouterr()
    assert run(["plot-trace", str(npz), "-o", str(png), "--tensor", "ntm_memory", "--tensor", "write_w"]) == 0
    assert "2 panels (memory after the last step, write weighting, head 1)" in capsys.readouterr().out


def test_n_samples_traces_the_first(ntm_dir, tmp_path, capsys):
    npz = tmp_path / "s.npz"
    capsys.readouterr()
    assert run(["generate", "-b", str(ntm_dir), "--prompt", PROMPT, "--n", "3", "--seed", "5", "--json",
                "--trace", str(npz)]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    tr = load_trace(npz)
    assert tr.tokens[: len(first["tokens"])] == first["tokens"]


def test_translation_attention_trace(cli_bundle, tmp_path, capsys):
    npz, png = tmp_path / "a.npz", tmp_path / "a.png"
    capsys.readouterr()
    assert run(["translate", "-b", str(cli_bundle), "--beam", "2", "--trace", str(npz), "ein kleiner test ."]) == 0
    text = capsys.readouterr().out.strip()
    tr = load_trace(npz)
    assert list(tr.tensors) == ["attention"] and tr.prefix_length == 0
    assert tr.info["source_tokens"][-1] == "</s>" and tr.tensors["attention"].shape[1] == len(tr.info["source_tokens"])
    np.testing.assert_allclose(tr.tensors["attention"].sum(axis=1), 1.0, atol=1e-4)
    assert detokenize(t for t in tr.tokens if t != "</s>") == text  # the printed translation was traced
    assert run(["plot-trace", str(npz), "--out", str(png)]) == 0
    assert png.is_file()


def test_bad_input(ntm_dir, tmp_path, capsys):
    (tmp_path / "junk.npz").write_text("junk")
    capsys.readouterr()
    g = ["generate", "-b", str(ntm_dir), "--prompt", PROMPT, "--greedy"]
    cases = [
        (["plot-trace", str(tmp_path / "none.npz"), "--out", str(tmp_path / "x.png")], "does not exist"),
        (["plot-trace", str(tmp_path / "junk.npz"), "--out", str(tmp_path / "x.png")], "not a readable trace"),
        (["plot-trace", str(tmp_path / "junk.npz"), "--out", str(tmp_path / "no" / "x.png")], "does not exist"),
        ([*g, "--trace", str(tmp_path / "no" / "t.npz")], "cannot write"),
        ([*g, "--trace-memory"], "--trace-memory goes with --trace"),
        (["translate", "-b", str(ntm_dir), "--trace", str(tmp_path / "t.npz"), "--stream", "x"], "drop --stream"),
    ]
    for argv, words in cases:
        assert run(argv) == 1, argv
        err = _error(capsys)
        assert words in err, (argv, err)
    npz = tmp_path / "ok.npz"
    assert run([*g, "--trace", str(npz)]) == 0
    capsys.readouterr()
    assert run(["plot-trace", str(npz), "--out", str(tmp_path / "x.png"), "--tensor", "ntm_memory"]) == 1
    assert "no tensor 'ntm_memory'" in _error(capsys)
    assert not (tmp_path / "x.png").exists()
