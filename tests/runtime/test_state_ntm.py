"""The loop is state-agnostic: an NTM-like [N, slots, width] memory flows through beam search.

state.h [N, H] comes from the encoder, state.ntm [N, slots, width] starts at 0 (constant
init); the step Gathers both with `row`. Each returned hypothesis is re-scored by teacher
forcing it alone (N=1) through the step graph: the log-probs match only if the beam loop
handed every row the state of its own history (a wrong reorder changes them).
"""

import numpy as np
import onnxruntime as ort
import pytest

from edge_s2s.runtime import Beam, Seq2Seq
from edge_s2s.runtime.manifest import Manifest

SOURCES = ["w4 w5 w6", "w7 w8", "w9 w10 w11 w12 w13"]


def _rescore(model, step, src_index, enc, ids, eos_end, reset_ntm=False):
    m: Manifest = model.manifest
    mem = {n: enc[n][src_index : src_index + 1] for n in m.memory}
    h = enc["state.h"][src_index : src_index + 1]
    ntm0 = np.zeros((1, 3, 5), np.float32)
    ntm = ntm0
    tok = m.tokens.bos_id
    lps = []
    names = [o.name for o in step.get_outputs()]
    for t in [*ids, *([m.tokens.eos_id] if eos_end else [])]:
        feeds = {"token": np.array([tok]), "row": np.array([0]), "batch_of_row": np.array([0]),
                 "topk": np.array([1]), **mem, "state.h": h, "state.ntm": ntm0 if reset_ntm else ntm}
        out = dict(zip(names, step.run(names, feeds)))
        lps.append(float(out["logprobs"][0, t]))
        h, ntm, tok = out["state.h.next"], out["state.ntm.next"], t
    return lps


@pytest.mark.parametrize("loop", ["reference", "compiled"])
def test_ntm_state_flows_through_beam(model_bundle, loop):
    model = Seq2Seq.load(model_bundle, loop=loop)
    assert [s.shape for s in model.manifest.state] == [["N", 8], ["N", 3, 5]]
    step = ort.InferenceSession(str(model_bundle / "decoder_step.onnx"), providers=["CPUExecutionProvider"])
    results = model.generate(SOURCES, search=Beam(size=4, n_best=3))
    enc = model.encode(model.encode_sources(SOURCES))
    differs = 0
    for i, r in enumerate(results):
        assert len(r.hypotheses) == 3
        for hyp in r.hypotheses:
            ended = len(hyp.token_log_probs) == len(hyp.ids) + 1
            lps = _rescore(model, step, i, enc, hyp.ids, ended)
            assert lps == pytest.approx(hyp.token_log_probs, abs=1e-4)
            if len(hyp.ids) >= 2:
                broken = _rescore(model, step, i, enc, hyp.ids, ended, reset_ntm=True)
                differs += not np.allclose(broken, lps, atol=1e-4)
    assert differs > 0  # the NTM memory really changes the log-probs
