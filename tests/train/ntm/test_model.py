"""The NTM decoder through the bundle contract: export, step parity with beam-like row
reordering, and whole searches (greedy, beam, forced prefix) run by the ordinary runtime
loops with no NTM-specific code."""

import numpy as np
import pytest
import torch

from edge_s2s.export.bundle_writer import bundle_manifest, write_manifest
from edge_s2s.export.generate import CONDITION, export_generator_graphs, torch_generate
from edge_s2s.export.parity import compare_searches, graph_parity
from edge_s2s.runtime.search import Beam, Greedy, Sample
from edge_s2s.runtime.tasks.generator import Generator
from edge_s2s.train.ntm.cell import NTMConfig
from edge_s2s.train.ntm.model import NTMDecoder
from edge_s2s.train.ntm.tasks import copy_example, task_vocab

VOCAB = task_vocab()


def _model(controller="lstm", seed=0):
    torch.manual_seed(seed)
    cfg = NTMConfig(controller=controller, controller_size=24, memory_slots=10, memory_width=6, shift_range=1,
                    memory_init="learned")
    return NTMDecoder(cfg, len(VOCAB), emb_dim=12).eval()


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
def test_training_path_equals_the_step(controller):
    model = _model(controller)
    targets = torch.randint(4, 260, (3, 7))
    cond = torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        full = model(targets, cond)
        states = model.initial_states(model.encode(cond))
        names = [s.name for s in model.state_specs()]
        token, row = torch.full((3,), 2), torch.arange(3)
        for t in range(7):
            o = model.step(token, row, row, torch.tensor([3]), *[states[n] for n in names])
            assert torch.allclose(o["logprobs"], full[:, t], atol=1e-6)
            states = {n: o[f"state.{n}.next"] for n in names}
            token = targets[:, t]
    assert {"ntm_memory", "read_w", "write_w", "read_vec"} <= set(names)


@pytest.fixture(scope="module")
def ntm_bundle(tmp_path_factory):
    """An (untrained) NTM decoder written as a generator bundle with the project's exporter pieces."""
    model = _model()
    d = tmp_path_factory.mktemp("ntm-bundle")
    enc, step = export_generator_graphs(model, d, 0)
    ck = d / "weights.pt"
    torch.save(model.state_dict(), ck)
    VOCAB.save(d / "tokens.txt")
    manifest = bundle_manifest(d, "generate", model, VOCAB, {"type": "generate", "unit": "word", "conditions": None},
                               24, {"architecture": "NTM"}, ck)
    manifest.memory_length_from = ""
    ck.unlink()
    write_manifest(d, manifest, {})
    return model, d, enc, step


def test_step_graph_parity_with_row_reordering(ntm_bundle):
    model, _, enc, step = ntm_bundle
    conds = np.zeros(3, np.int64)
    with torch.no_grad():
        t_enc = {n: v.numpy() for n, v in model.encode(torch.from_numpy(conds)).items()}
    report = graph_parity(model, enc, step, {CONDITION: conds}, t_enc, steps=8, beams=3, k=5, tol=1e-4)
    assert report["rows"] == 9 and report["max_abs_diff"] <= 1e-4
    assert report["per_output"]["step.state.ntm_memory.next"] <= 1e-4


@pytest.mark.parametrize("loop", ["compiled", "reference"])
def test_searches_over_an_ntm_match_pytorch(ntm_bundle, loop):
    model, d, _, _ = ntm_bundle
    rt = Generator.load(d, loop=loop)
    rng = np.random.default_rng(0)
    prefixes = [copy_example(rng, n, VOCAB).prefix for n in (2, 4, 3)]
    conds = np.zeros(3, np.int64)
    enc = rt.encode_conditions(conds.tolist())
    report = compare_searches(lambda s: rt.decode_encoded(enc, s, 16, prefix=prefixes),
                              lambda s: torch_generate(model, rt.manifest, conds, s, 16, prefixes), 3, loop,
                              searches=[Greedy(), Beam(size=4, n_best=2), Sample(seed=5)], tol=1e-4)
    for r in report["searches"].values():
        assert r["identical"] == 3
    hyps = rt.decode_encoded(enc, Beam(size=4), 16, prefix=prefixes)
    for h, p in zip(hyps, prefixes):
        assert h[0].ids[: len(p)] == p  # the input is forced, then the beam writes


@pytest.mark.parametrize("batch,beam,max_length", [(1, 2, 8), (5, 6, 24), (2, 3, 40)])
def test_ntm_parity_at_several_batches_beams_and_lengths(ntm_bundle, batch, beam, max_length):
    """Tokens identical and log-probs within 1e-4 of PyTorch, beyond the one size above."""
    model, d, _, _ = ntm_bundle
    rt = Generator.load(d)
    rng = np.random.default_rng(batch)
    prefixes = [copy_example(rng, int(n), VOCAB).prefix for n in rng.integers(1, 6, batch)]
    conds = np.zeros(batch, np.int64)
    enc = rt.encode_conditions(conds.tolist())
    report = compare_searches(lambda s: rt.decode_encoded(enc, s, max_length, prefix=prefixes),
                              lambda s: torch_generate(model, rt.manifest, conds, s, max_length, prefixes), batch,
                              "compiled", searches=[Greedy(), Beam(size=beam, n_best=min(beam, 2))], tol=1e-4)
    for r in report["searches"].values():
        assert r["identical"] == batch
