"""`verify_bundle` re-runs golden.json: passes on the bundle's own decodes, fails on changed ones."""

import json
import shutil

from edge_s2s.runtime import Beam, Greedy, Seq2Seq
from edge_s2s.runtime.tools.verify import verify_bundle


def test_verify_golden(model_bundle, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(model_bundle, d)
    ref = Seq2Seq.load(d, loop="reference")
    cases = []
    for src in ("w4 w5 w6", "w9 w10"):
        for search, js in ((Greedy(), {"type": "greedy"}),
                           (Beam(3, 0.6, 2), {"type": "beam", "size": 3, "length_penalty": 0.6, "n_best": 2, "early_stop": True})):
            r = ref.generate([src], search=search, max_length=8)[0]
            cases.append({"source": src, "search": js, "max_length": 8,
                          "hypotheses": [{"ids": h.ids, "log_prob": h.log_prob, "score": h.score} for h in r.hypotheses]})
    (d / "golden.json").write_text(json.dumps({"cases": cases}))
    res = verify_bundle(d)
    assert len(res) == 4 and all(c.passed for c in res)
    cases[1]["hypotheses"][0]["ids"] = cases[1]["hypotheses"][0]["ids"] + [5]
    cases[2]["hypotheses"][0]["log_prob"] += 1e-3
    (d / "golden.json").write_text(json.dumps({"cases": cases}))
    assert [c.passed for c in verify_bundle(d)] == [True, False, False, True]
