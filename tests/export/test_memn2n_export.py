"""Exporting a memory network (export/memn2n.py): one graph whose answers and attention
equal PyTorch's at batch sizes and memory lengths other than the export example's, golden
cases `verify` re-runs, and clear failures (broken graph, bad run directory)."""

import json
import shutil

import numpy as np
import pytest
import torch

from edge_s2s.cli.app import run
from edge_s2s.export.memn2n import EXAMPLE_B, EXAMPLE_M, export_memn2n_bundle, memn2n_parity
from edge_s2s.export.parity import ParityError
from edge_s2s.runtime.bundle import sha256_file
from edge_s2s.runtime.tasks.memory_manifest import MemoryManifest
from edge_s2s.runtime.tasks.memory_network import MemoryNetwork
from edge_s2s.runtime.tasks.story import question_words
from edge_s2s.runtime.tools.verify import verify_bundle
from edge_s2s.train.memn2n.loop import load_memn2n_run, read_heldout

pytestmark = pytest.mark.slow


def test_bundle_manifest_and_enforced_parity(memn2n_bundle, memn2n_run):
    m = MemoryManifest.load(memn2n_bundle)
    assert (m.task, m.hops, m.memory_size, m.dim, m.encoding) == ("answer", 2, 10, 20, "pe")
    assert sorted(m.files) == ["answers.txt", "golden.json", "memn2n.onnx", "tokens.txt"]
    assert [t.name for t in m.graph.inputs] == ["story", "question", "n_sentences"]
    assert {t.name: t.shape for t in m.graph.outputs} == {"answer_logprobs": ["B", m.answers.size],
                                                          "attention": ["B", 2, "M"]}
    p = m.metrics["parity"]
    assert p["enforced"] and p["max_abs_diff"] <= 1e-4
    assert {s["batch"] for s in p["settings"]} >= {1, 3, 7} and len({s["memory"] for s in p["settings"]}) >= 3
    assert all(s["same_answers"] for s in p["settings"])
    assert m.metrics["training"]["test_error"]["1"] < 0.15
    assert m.model["tasks"] == [1] and m.source_checkpoint_sha256 == sha256_file(memn2n_run / "last.pt")


def test_graph_equals_pytorch_at_other_sizes(memn2n_bundle, memn2n_run):
    """Independent of the exporter's own check: batches of 2, 5 and 9 (none the example's B=2 x
    M=5 shape), memories of 1, 4 and all sentences."""
    model, _, _ = load_memn2n_run(memn2n_run)
    net = MemoryNetwork.load(memn2n_bundle)
    examples = read_heldout(memn2n_run)
    shapes = set()
    for batch, keep in [(2, 1), (5, 4), (9, 0)]:
        chosen = examples[batch: 2 * batch]
        mems = [net.memory(ex["story"][-keep:] if keep else ex["story"]) for ex in chosen]
        arrays = net.encode(mems, [question_words(ex["question"]) for ex in chosen])
        shapes.add(arrays[0].shape)
        o_lp, o_att = net.run(*arrays)
        with torch.no_grad():
            t_lp, t_att = model(*(torch.from_numpy(a) for a in arrays))
        assert np.abs(o_lp - t_lp.numpy()).max() < 1e-4
        assert np.abs(o_att - t_att.numpy()).max() < 1e-4
        assert np.array_equal(o_lp.argmax(-1), t_lp.numpy().argmax(-1))
    assert len(shapes) == 3 and all(s[:2] != (EXAMPLE_B, EXAMPLE_M) for s in shapes)


def test_verify_reruns_golden_and_catches_a_wrong_one(memn2n_bundle, tmp_path, capsys):
    golden = json.loads((memn2n_bundle / "golden.json").read_text())["cases"]
    assert len(golden) == 4 and all(len(c["attention"]) == 2 for c in golden)
    answers = (memn2n_bundle / "answers.txt").read_text().split()
    assert all(c["answer"] in answers and len(c["log_probs"]) == len(answers) for c in golden)
    results = verify_bundle(memn2n_bundle)
    assert [r.passed for r in results] == [True] * 4
    assert run(["verify", str(memn2n_bundle)]) == 0
    assert "4 passed, 0 failed" in capsys.readouterr().out

    copy = tmp_path / "b"
    shutil.copytree(memn2n_bundle, copy)
    data = json.loads((copy / "golden.json").read_text())
    data["cases"][1]["log_probs"][0] += 0.01  # a golden answer the graph does not give
    (copy / "golden.json").write_text(json.dumps(data))
    m = json.loads((copy / "manifest.json").read_text())
    m["files"]["golden.json"] = sha256_file(copy / "golden.json")
    (copy / "manifest.json").write_text(json.dumps(m))
    assert [r.passed for r in verify_bundle(copy)] == [True, False, True, True]
    assert run(["verify", str(copy)]) == 1
    assert "3 passed, 1 failed" in capsys.readouterr().out


def test_parity_catches_a_model_that_differs_from_the_graph(memn2n_bundle, memn2n_run):
    model, _, _ = load_memn2n_run(memn2n_run)
    with torch.no_grad():
        model.words[1].add_(0.05)
    with pytest.raises(ParityError, match="memn2n.onnx differs from PyTorch at batch 1"):
        memn2n_parity(MemoryNetwork.load(memn2n_bundle), model, read_heldout(memn2n_run))


def test_failed_parity_writes_nothing(memn2n_run, tmp_path, monkeypatch):
    """An exporter whose graph is off by 0.01 in every log-prob: the export fails, no bundle appears."""
    from edge_s2s.export import memn2n as memn2n_export

    def off(self, story, question, n_sentences):
        logp, att = self.model(story, question, n_sentences)
        return logp + 0.01, att

    monkeypatch.setattr(memn2n_export.MemN2NGraph, "forward", off)
    out = tmp_path / "bundle"
    with pytest.raises(ParityError, match="log-prob"):
        export_memn2n_bundle(memn2n_run, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def _copy_run(memn2n_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(memn2n_run, d)
    return d


def test_bad_run_directories(memn2n_run, tmp_path, capsys):
    out = str(tmp_path / "bundle")
    d = _copy_run(memn2n_run, tmp_path)
    (d / "last.pt").unlink()
    assert run(["export", str(d), "--out", out]) == 1
    assert "last.pt does not exist" in _error(capsys)

    shutil.rmtree(d)
    d = _copy_run(memn2n_run, tmp_path)
    (d / "heldout.json").unlink()
    assert run(["export", str(d), "--out", out]) == 1
    assert "has no heldout.json" in _error(capsys)

    cfg = json.loads((d / "config.json").read_text())
    cfg["tokens"] = cfg["tokens"] + ["zebra"]
    (d / "config.json").write_text(json.dumps(cfg))
    assert run(["export", str(d), "--out", out]) == 1
    assert "does not belong to" in _error(capsys)

    (d / "config.json").write_text('{"task": "answer"}')
    assert run(["export", str(d), "--out", out]) == 1
    assert "malformed" in _error(capsys)

    assert run(["export", str(memn2n_run), "--out", out, "--int8"]) == 1
    assert "--int8 is not offered" in _error(capsys)
    assert not (tmp_path / "bundle").exists()


def test_export_cli_prints_parity(memn2n_run, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert run(["export", str(memn2n_run), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "parity (enforced, tolerance 0.0001)" in text and "golden.json: 4 cases" in text
    assert "edge-s2s answer --bundle" in text
    assert MemoryNetwork.load(out).answer("Mary went to the garden.", "Where is Mary?").text == "garden"
