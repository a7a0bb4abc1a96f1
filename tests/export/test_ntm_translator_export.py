"""The NTM-decoder translator through the ordinary exporter and runtime: dynamic B, source
length L (the memory's slots), rows N and K; parity with PyTorch incl. beam search; both
runtime loops, batched translations equal to one-by-one ones."""

import numpy as np
import pytest
import torch
from toy import tiny_config

from edge_s2s.export import graphs as og
from edge_s2s.export.translate import export_bundle
from edge_s2s.runtime.manifest import Manifest
from edge_s2s.runtime.search import Beam, Greedy
from edge_s2s.runtime.tasks.seq2seq import Seq2Seq
from edge_s2s.runtime.tools.verify import verify_bundle
from edge_s2s.train.translate.config import ModelConfig
from edge_s2s.train.translate.loop import train_translator
from edge_s2s.train.translate.ntm_decoder import NTMTranslator


def test_ntm_graphs_dynamic_axes(tmp_path, step_matches_torch):
    """Encoder and step run in ORT at B, S, N, K other than the export example's and match torch."""
    torch.manual_seed(2)
    model = NTMTranslator(ModelConfig(16, 16, 24, decoder="ntm", ntm_width=12, ntm_read_heads=2), 25).eval()
    enc_p, step_p = og.export_graphs(model, tmp_path)
    enc_s, step_s = og.ort_session(enc_p), og.ort_session(step_p)
    for B, S, N, K in [(1, 1, 1, 1), (4, 9, 7, 6), (3, 2, 12, 25)]:
        src, _ = og.example_encoder_inputs(model, B, S, seed=B)
        lengths = torch.tensor([max(1, S - (i * 3) % S) for i in range(B)])
        for b in range(B):
            src[b, lengths[b]:] = 0
        names = model.encoder_output_names()
        o_enc = dict(zip(names, enc_s.run(names, {"src": src.numpy(), "src_lengths": lengths.numpy()})))
        with torch.no_grad():
            t_enc = model.encode(src, lengths)
        for n in names:
            assert o_enc[n].shape == tuple(t_enc[n].shape), n
            assert np.allclose(o_enc[n], t_enc[n].numpy(), atol=1e-5), n
        o = step_matches_torch(model, step_s, t_enc, B, N, K)
        assert o["state.ntm_memory.next"].shape == (N, S, 12)


@pytest.fixture(scope="module")
def ntm_bundle(toy_tsv, tmp_path_factory):
    root = tmp_path_factory.mktemp("ntm-run")
    run = train_translator(tiny_config(toy_tsv, root / "run", decoder="ntm", epochs=3), progress=False)
    return export_bundle(run, root / "bundle")


@pytest.mark.slow
def test_ntm_translator_exports_with_parity(ntm_bundle):
    man = Manifest.load(ntm_bundle.bundle)
    assert man.memory == ["memory_mask"] and man.memory_length_from == "memory_mask" and man.attention
    specs = {s.name: s for s in man.state}
    assert specs["ntm_memory"].shape == ["N", "L", 16] and specs["read_w"].shape == ["N", 1, "L"]
    step = man.metrics["parity"]["step"]
    assert step["max_abs_diff"] <= 1e-4 and step["per_output"]["step.state.ntm_memory.next"] <= 1e-4
    searches = man.metrics["parity"]["search"]["searches"]
    assert any(name.startswith("beam") for name in searches)
    for s in searches.values():
        assert s["identical"] == s["of"] and s["max_log_prob_diff"] <= 1e-4
    assert all(c.passed for c in verify_bundle(ntm_bundle.bundle))


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["compiled", "reference"])
def test_ntm_translations_do_not_depend_on_the_batch(ntm_bundle, loop):
    """Padding slots keep zero weight, so a sentence translates the same alone or padded in a batch."""
    rt = Seq2Seq.load(ntm_bundle.bundle, loop=loop)
    sources = ["ka lu mi po", "po", "ri ka lu mi po ri ka"]
    for search in (Greedy(), Beam(4, n_best=2)):
        batched = rt.generate(sources, search=search)
        for src, res in zip(sources, batched):
            hyps, alone = res.hypotheses, rt.generate([src], search=search)[0].hypotheses
            assert [h.ids for h in hyps] == [h.ids for h in alone]
            assert np.allclose([h.score for h in hyps], [h.score for h in alone], atol=1e-4)
