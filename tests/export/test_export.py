"""Export every attention type, prove parity, and check the bundle the runtime loads."""

import json

import numpy as np
import pytest
import torch
from toy import tiny_config

from edge_s2s.export import graphs as og
from edge_s2s.export.bundle_writer import ExportError
from edge_s2s.export.parity import ParityError
from edge_s2s.export.translate import export_bundle
from edge_s2s.runtime.bundle import sha256_file
from edge_s2s.runtime.manifest import Manifest
from edge_s2s.train.core.checkpoint import CheckpointError
from edge_s2s.train.translate.config import ModelConfig
from edge_s2s.train.translate.loop import train_translator
from edge_s2s.train.translate.model import Translator

ATTENTIONS = ["dot", "general", "additive", "cosine", "none"]


@pytest.fixture(scope="module")
def runs(toy_tsv, tmp_path_factory):
    """One tiny trained run per attention type (2 epochs each)."""
    root = tmp_path_factory.mktemp("runs")
    cache = {}

    def get(attention):
        if attention not in cache:
            cache[attention] = train_translator(tiny_config(toy_tsv, root / attention, attention=attention, epochs=2),
                                                progress=False)
        return cache[attention]

    return get


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_graphs_dynamic_axes(tmp_path, attention, step_matches_torch):
    """Both graphs run in ORT at B, S, N, K different from the export example and match torch."""
    torch.manual_seed(1)
    model = Translator(ModelConfig(16, 16, 32, attention, 16), 25).eval()
    enc_p, step_p = og.export_graphs(model, tmp_path)
    enc_s, step_s = og.ort_session(enc_p), og.ort_session(step_p)
    for B, S, N, K in [(1, 1, 1, 1), (4, 9, 7, 6), (3, 2, 12, 25)]:
        src, lengths = og.example_encoder_inputs(model, B, S, seed=B)
        lengths = torch.tensor([max(1, S - (i * 3) % S) for i in range(B)])
        for b in range(B):
            src[b, lengths[b]:] = 0
        names = model.encoder_output_names()
        o_enc = dict(zip(names, enc_s.run(names, {"src": src.numpy(), "src_lengths": lengths.numpy()})))
        with torch.no_grad():
            t_enc = model.encode(src, lengths)
        for n in names:
            assert o_enc[n].shape == tuple(t_enc[n].shape)
            assert np.allclose(o_enc[n], t_enc[n].detach().numpy(), atol=1e-5), n
        o = step_matches_torch(model, step_s, t_enc, B, N, K)
        assert o["topk_ids"].shape == (N, K)


def _check_bundle(bundle):
    man = Manifest.load(bundle)
    assert set(man.files) == {"encoder.onnx", "decoder_step.onnx", "tokens.txt", "golden.json"}
    for name, digest in man.files.items():
        assert sha256_file(bundle / name) == digest, name
    assert [t.name for t in man.decoder_step.inputs] == man.step_input_names()
    assert [t.name for t in man.encoder.outputs] == man.encoder_output_names()
    assert [t.name for t in man.decoder_step.outputs] == man.step_output_names()
    mask = [t for t in man.encoder.outputs if t.name == "memory_mask"]
    assert all(t.dtype == "bool" for t in mask)
    return man


@pytest.mark.slow
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_export_with_parity(runs, tmp_path, attention):
    run = runs(attention)
    report = export_bundle(run, tmp_path / "bundle")
    bundle = report.bundle
    man = _check_bundle(bundle)
    assert man.attention == (attention != "none")
    assert man.source_checkpoint_sha256 == sha256_file(report.checkpoint)
    step = man.metrics["parity"]["step"]
    assert step["max_abs_diff"] <= 1e-4
    assert (step["batch"], step["rows"], step["k"]) == (3, 9, 5)  # not the export example's (2, 3, 3)
    for s in man.metrics["parity"]["search"]["searches"].values():
        assert s["identical"] == s["of"] and s["max_log_prob_diff"] <= 1e-4
    assert man.metrics["training"]["history"]
    golden = json.loads((bundle / "golden.json").read_text())["cases"]
    assert len(golden) == report.golden_cases == 6
    assert {c["search"]["type"] for c in golden} == {"greedy", "beam"}

    from edge_s2s.runtime.tasks.seq2seq import Seq2Seq
    from edge_s2s.runtime.tools.verify import verify_bundle

    assert all(c.passed for c in verify_bundle(bundle))
    model = Seq2Seq.load(bundle)
    out = model.generate(["ka lu mi", "po ri"], search=model_search())
    assert len(out) == 2 and all(isinstance(r.text, str) for r in out)


def model_search():
    from edge_s2s.runtime.search import Beam

    return Beam(3, n_best=2)


@pytest.mark.slow
def test_int8_export_reports_parity(runs, tmp_path):
    report = export_bundle(runs("general"), tmp_path / "q", int8=True)
    man = _check_bundle(report.bundle)
    assert man.model["int8"] is True
    assert man.metrics["parity"]["enforced"] is False
    assert report.max_abs_diff is not None and report.max_abs_diff < 1.0
    enc = (report.bundle / "encoder.onnx").stat().st_size
    assert enc > 0 and not (report.bundle / "fp32").exists()
    # golden.json holds the int8 graphs' own decodes, so verify checks the device, not int8 vs fp32
    from edge_s2s.runtime.tools.verify import verify_bundle

    assert all(r.passed for r in verify_bundle(report.bundle))
    # a sentence's int8 translation does not depend on what else is in the batch (per-row scales,
    # float32 encoder LSTMs): each source alone gives what it gives among the others
    import onnx

    from edge_s2s.runtime.search import Beam, Greedy
    from edge_s2s.runtime.tasks.seq2seq import Seq2Seq

    ops = {n.op_type for f in ("encoder.onnx", "decoder_step.onnx") for n in onnx.load(str(report.bundle / f)).graph.node}
    assert "DynamicQuantizeLinear" not in ops and "DynamicQuantizeLSTM" not in ops and "MatMulInteger" in ops
    rt = Seq2Seq.load(report.bundle)
    ids = [[4 + (i * 7 + j) % 20 for j in range(3 + i % 5)] for i in range(6)]
    for search in (Greedy(), Beam(3)):
        together = rt.decode_ids(ids, search)
        for i, one in enumerate(ids):
            alone = rt.decode_ids([one], search)[0]
            assert [h.ids for h in alone] == [h.ids for h in together[i]]
            assert np.allclose([h.log_prob for h in alone], [h.log_prob for h in together[i]], atol=1e-5)


@pytest.mark.slow
def test_failed_export_leaves_no_half_bundle(runs, tmp_path, monkeypatch):
    run = runs("general")
    out = tmp_path / "b"
    export_bundle(run, out, parity=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    import edge_s2s.export.translate as bw

    def fail(*a, **k):
        raise ParityError("simulated parity failure: max |diff| = 1")

    monkeypatch.setattr(bw, "step_parity", fail)
    with pytest.raises(ParityError, match="simulated"):
        export_bundle(run, out, checkpoint="last")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # old bundle untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temp directory left
    with pytest.raises(ParityError):
        export_bundle(run, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_export_errors(runs, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_bundle(tmp_path / "nothing", tmp_path / "b")
    run = runs("dot")
    bad = tmp_path / "broken.pt"
    bad.write_bytes((run / "last.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        export_bundle(run, tmp_path / "b", checkpoint=bad)
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="refusing to overwrite"):
        export_bundle(run, tmp_path / "user", parity=False)
    assert (tmp_path / "user" / "notes.txt").read_text() == "mine"


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["lstm", "ntm"])
def test_distribution_fed_translator_exports_with_parity(toy_tsv, tmp_path, decoder):
    """input_feed="distribution": the previous softmax is `state.prev_dist` (one-hot <s> from the encoder),
    the unchanged runtime loop runs it, and greedy and beam decodes equal PyTorch's token for token."""
    from dataclasses import replace

    from edge_s2s.runtime.tasks.seq2seq import Seq2Seq
    from edge_s2s.runtime.tools.verify import verify_bundle
    from edge_s2s.train.methods.exposure import FeedConfig

    cfg = tiny_config(toy_tsv, tmp_path / "run", epochs=2, decoder=decoder)
    cfg = replace(cfg, model=replace(cfg.model, input_feed="distribution"), feed=FeedConfig(mode="distribution"))
    report = export_bundle(train_translator(cfg, progress=False), tmp_path / "bundle")
    man = _check_bundle(report.bundle)
    prev = man.state[-1]
    assert (prev.name, prev.shape, prev.init) == ("prev_dist", ["N", man.tokens.size], "encoder")
    assert man.model["input_feed"] == "distribution"
    assert "token" in man.step_input_names() and "state.prev_dist" in man.encoder_output_names()
    par = man.metrics["parity"]
    assert par["step"]["max_abs_diff"] <= 1e-4 and par["step"]["per_output"]["step.state.prev_dist.next"] <= 1e-5
    assert set(par["search"]["searches"]) == {"greedy", "beam5"}
    for s in par["search"]["searches"].values():
        assert s["identical"] == s["of"] >= 4
    assert all(c.passed for c in verify_bundle(report.bundle))
    out = Seq2Seq.load(report.bundle).generate(["ka lu mi", "po ri"], search=model_search())
    assert len(out) == 2 and all(isinstance(r.text, str) for r in out)
