"""The trace: a finished output replayed through the step graph is exactly the path the search took.

On an NTM trained for a few dozen steps on the copy task (tests/helpers/ntm_copy.py): the
replayed log-prob of every token equals the search's per-token log-probs and score
(greedy, beam, sampling; forced prefix included; both loops), the replayed states equal
a PyTorch step-by-step run of the same tokens, and the .npz file round-trips and refuses
anything that is not a trace with one clear line.
"""

import json
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch
from ntm_copy import SLOTS, VOCAB, copy_bundle  # noqa: E402

from edge_s2s.runtime.errors import InputError  # noqa: E402
from edge_s2s.runtime.search import Beam, Greedy, Sample  # noqa: E402
from edge_s2s.runtime.tasks.generator import Generator  # noqa: E402
from edge_s2s.runtime.tools.trace import (
    TRACE_FORMAT,
    Trace,
    is_weighting,
    load_trace,
    replay,
    save_trace,
    traced_outputs,
)
from edge_s2s.train.ntm.tasks import copy_example  # noqa: E402

EOS = VOCAB.eos_id


@pytest.fixture(scope="module")
def ntm(tmp_path_factory):
    return copy_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def prefixes():
    rng = np.random.default_rng(3)
    return [copy_example(rng, n, VOCAB).prefix for n in (3, 5)]


def test_the_model_was_trained(ntm):
    _, _, losses = ntm
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5


def test_names_that_are_weightings():
    assert is_weighting("read_w") and is_weighting("write_w") and is_weighting("attention")
    assert is_weighting("attn_weights") and is_weighting("alpha")
    assert not any(is_weighting(n) for n in ("ntm_memory", "read_vec", "ctrl_h", "ctrl_c", "h", "c", "row_tok"))


def test_default_outputs_are_the_weightings(ntm):
    rt = Generator.load(ntm[1])
    assert traced_outputs(rt.bundle) == {"read_w": "state.read_w.next", "write_w": "state.write_w.next"}
    assert set(traced_outputs(rt.bundle, memory=True)) == set(rt.manifest.state_names)


SEARCHES = [(Greedy(), 14), (Beam(size=3, n_best=3, length_penalty=0.6), 12), (Sample(seed=4, temperature=1.5), 0),
            (Beam(size=2, n_best=2, early_stop=False), 0)]


@pytest.mark.parametrize("loop", ["compiled", "reference"])
@pytest.mark.parametrize("search, min_length", SEARCHES, ids=["greedy", "beam-lp", "sample", "beam-no-early-stop"])
def test_replay_equals_the_search(ntm, prefixes, loop, search, min_length):
    rt = Generator.load(ntm[1], loop=loop)
    enc = rt.encode_conditions([0, 0])
    hyps = rt.decode_encoded(enc, search, 20, min_length, prefix=prefixes)
    generated = 0
    for item, (hs, p) in enumerate(zip(hyps, prefixes)):
        assert hs
        for h in hs:
            tr = replay(rt.bundle, enc, h.ids, h.finished, item=item, forced=len(p))
            T = len(h.ids) + h.finished
            assert tr.ids == h.ids + [EOS] * h.finished and tr.steps == T
            assert tr.tokens == VOCAB.decode(tr.ids)
            assert tr.forced == [True] * len(p) + [False] * (T - len(p)) and tr.prefix_length == len(p)
            np.testing.assert_allclose(tr.log_probs, h.token_log_probs, rtol=0, atol=1e-5)
            assert tr.log_prob == pytest.approx(h.log_prob, abs=1e-4)
            if isinstance(search, Beam):
                assert tr.log_prob / T ** search.length_penalty == pytest.approx(h.score, abs=1e-4)
            for name in ("read_w", "write_w"):
                w = tr.tensors[name]
                assert w.shape == (T, 1, SLOTS)
                np.testing.assert_allclose(w.sum(axis=-1), 1.0, atol=1e-4)  # weightings over the slots
            generated += T - len(p)
    assert generated > 0


def test_an_unfinished_output_is_traced_to_its_last_token(ntm, prefixes):
    rt = Generator.load(ntm[1])
    enc = rt.encode_conditions([0])
    q = prefixes[1] + [30, 31]  # all forced and max_length = its length: it never gets to end
    h = rt.decode_encoded(enc, Greedy(), len(q), prefix=[q])[0][0]
    assert not h.finished and h.ids == q
    tr = replay(rt.bundle, enc, h.ids, False, forced=len(prefixes[1]))
    assert tr.ids == h.ids and EOS not in tr.ids
    np.testing.assert_allclose(tr.log_probs, h.token_log_probs, atol=1e-5)


def test_replayed_states_equal_pytorch_step_by_step(ntm, prefixes):
    model, d, _ = ntm
    rt = Generator.load(d)
    enc = rt.encode_conditions([0])
    h = rt.decode_encoded(enc, Beam(size=3), 20, 12, prefix=[prefixes[0]])[0][0]
    tr = replay(rt.bundle, enc, h.ids, h.finished, forced=len(prefixes[0]), memory=True)
    names = [s.name for s in model.state_specs()]
    assert set(tr.tensors) == set(names) and tr.tensors["ntm_memory"].shape[1:] == (SLOTS, model.cfg.memory_width)
    with torch.no_grad():
        states = model.initial_states(model.encode(torch.zeros(1, dtype=torch.long)))
        row, token = torch.zeros(1, dtype=torch.long), torch.tensor([VOCAB.bos_id])
        for t, tok in enumerate(tr.ids):
            o = model.step(token, row, row, torch.tensor([1]), *[states[n] for n in names])
            states = {n: o[f"state.{n}.next"] for n in names}
            assert float(o["logprobs"][0, tok]) == pytest.approx(tr.log_probs[t], abs=1e-4)
            token = torch.tensor([tok])
    for n in names:  # the final state, memory matrix included
        np.testing.assert_allclose(tr.tensors[n][-1], states[n][0].numpy(), atol=1e-4)


def test_replay_bad_input(ntm):
    rt = Generator.load(ntm[1])
    enc = rt.encode_conditions([0])
    with pytest.raises(InputError, match="not in the encoded batch"):
        replay(rt.bundle, enc, [10, 11], item=1)
    with pytest.raises(InputError, match="cannot replay"):
        replay(rt.bundle, enc, [10, len(VOCAB) + 5])
    with pytest.raises(InputError, match="no tokens"):
        replay(rt.bundle, enc, [], finished=False)


def _trace(ntm, memory=False) -> Trace:
    rt = Generator.load(ntm[1])
    enc = rt.encode_conditions([0])
    p = copy_example(np.random.default_rng(0), 4, VOCAB).prefix
    h = rt.decode_encoded(enc, Greedy(), 16, 10, prefix=[p])[0][0]
    return replay(rt.bundle, enc, h.ids, h.finished, forced=len(p), memory=memory, info={"prompt": "x"})


def test_npz_round_trip(ntm, tmp_path):
    tr = _trace(ntm, memory=True)
    path = save_trace(tmp_path / "t.npz", tr)
    assert path == tmp_path / "t.npz" and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    back = load_trace(path)
    assert (back.ids, back.tokens, back.forced) == (tr.ids, tr.tokens, tr.forced)
    np.testing.assert_allclose(back.log_probs, tr.log_probs, atol=1e-6)  # stored as float32
    assert set(back.tensors) == set(tr.tensors)
    for n, v in tr.tensors.items():
        np.testing.assert_array_equal(back.tensors[n], v)
    assert back.info["task"] == "generate" and back.info["model"]["architecture"] == "NTM"
    assert back.info["prompt"] == "x" and back.weightings == ["read_w", "write_w"]
    assert back.info["states"]["ntm_memory"] == ["N", SLOTS, 8]
    with np.load(path, allow_pickle=False) as z:  # plain numpy can read every array
        assert str(z["format"]) == TRACE_FORMAT and z["tensor.write_w"].shape == tr.tensors["write_w"].shape


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _good_arrays(tr: Trace) -> dict:
    return {"format": np.array(TRACE_FORMAT), "format_version": np.array(1), "info": np.array(json.dumps(tr.info)),
            "ids": np.array(tr.ids), "tokens": np.array(tr.tokens), "forced": np.array(tr.forced),
            "log_probs": np.array(tr.log_probs, np.float32), "tensor.read_w": tr.tensors["read_w"]}


def test_load_refuses_what_is_not_a_trace(ntm, tmp_path):
    tr = _trace(ntm)
    good = _good_arrays(tr)
    assert load_trace(_npz(tmp_path / "ok.npz", **good)).steps == tr.steps
    (tmp_path / "text.npz").write_text("hello")
    np.save(tmp_path / "arr.npy", np.zeros(3))
    with zipfile.ZipFile(tmp_path / "zip.npz", "w") as z:
        z.writestr("readme.txt", "not numpy")
    cases = {
        tmp_path / "missing.npz": "does not exist",
        tmp_path: "not a file",
        tmp_path / "text.npz": "not a readable trace",
        tmp_path / "arr.npy": "single numpy array",
        tmp_path / "zip.npz": "not an edge-s2s trace",
        _npz(tmp_path / "other.npz", x=np.zeros(3)): "not an edge-s2s trace",
        _npz(tmp_path / "v9.npz", **{**good, "format_version": np.array(9)}): "version 9",
        _npz(tmp_path / "short.npz", **{**good, "forced": np.array(tr.forced[:-1])}): "of one length",
        _npz(tmp_path / "badt.npz", **{**good, "tensor.read_w": tr.tensors["read_w"][1:]}): "one entry per step",
        _npz(tmp_path / "noinfo.npz", **{k: v for k, v in good.items() if k != "info"}): "missing info",
        _npz(tmp_path / "badinfo.npz", **{**good, "info": np.array("{")}): "not JSON",
        _npz(tmp_path / "empty.npz", **{k: v for k, v in good.items() if k != "tensor.read_w"}): "no traced tensors",
        _npz(tmp_path / "obj.npz", **{**good, "ids": np.array([1, "a"], dtype=object)}): "not a readable trace",
    }
    for path, words in cases.items():
        with pytest.raises(InputError) as e:
            load_trace(path)
        msg = str(e.value)
        assert words in msg and "\n" not in msg, (path.name, msg)


def test_save_refuses_an_unwritable_path(ntm, tmp_path):
    tr = _trace(ntm)
    with pytest.raises(InputError, match="does not exist"):
        save_trace(tmp_path / "no" / "t.npz", tr)
    with pytest.raises(InputError, match="directory"):
        save_trace(tmp_path, tr)


def test_trace_and_plot_without_torch_or_onnx(model_bundle, tmp_path):
    """Tracing an attention model and drawing it needs only numpy, onnxruntime and Pillow."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        import numpy as np
        from edge_s2s.runtime import Beam, Seq2Seq
        from edge_s2s.runtime.tools.trace import hypothesis_finished, load_trace, save_trace, trace_translation
        from edge_s2s.runtime.pictures.trace_map import save_trace_figure
        m = Seq2Seq.load({str(model_bundle)!r})
        h = m.generate(["w4 w5 w6"], search=Beam(3))[0].hypotheses[0]
        tr = trace_translation(m, "w4 w5 w6", h.ids, hypothesis_finished(h))
        assert list(tr.tensors) == ["attention"] and tr.tensors["attention"].shape[1] == 4
        np.testing.assert_allclose(tr.tensors["attention"][:len(h.ids)], h.attention, atol=1e-5)
        assert abs(tr.log_prob - h.log_prob) < 1e-4
        save_trace({str(tmp_path / "a.npz")!r}, tr)
        fig = save_trace_figure({str(tmp_path / "a.png")!r}, load_trace({str(tmp_path / "a.npz")!r}))
        assert fig.panels[0].row_labels == ["w4", "w5", "w6", "</s>"]
        assert not any(k.startswith(("torch", "onnx.")) or k == "onnx" for k, v in sys.modules.items() if v is not None)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
