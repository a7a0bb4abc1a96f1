"""The 2-D (grid) LSTM pixel generator: wavefront training path == exported step path,
causality, both neighbours, blocked ids, beam row reorder, ONNX export, a training smoke."""

import numpy as np
import pytest
import torch

from edge_s2s.export.graphs import _quiet_export
from edge_s2s.runtime import manifest as mf
from edge_s2s.train.core.step_contract import StepGraph
from edge_s2s.train.generate.config import GeneratorConfig
from edge_s2s.train.generate.grid_lstm import BORDER, GridGenerator

Q = 4
V = 4 + Q
BLOCKED = [0, 1, 2, 3]


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: one intra-op thread avoids OpenMP spin-waits on a busy 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make(height=4, width=6, n_conditions=3, hidden=16, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = GeneratorConfig(unit="pixel", arch="grid", emb_dim=8, hidden=hidden, cond_dim=6, n_conditions=n_conditions,
                          height=height, width=width, blocked_ids=list(BLOCKED), **kw)
    model = GridGenerator(cfg, V).eval()
    if n_conditions == 0:  # learned start vectors begin at zero: make them matter in the tests
        with torch.no_grad():
            model.cond_enc.h0.normal_()
            model.cond_enc.c0.normal_()
    return model


def images(B, T, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, V, (B, T), generator=g)


def state_list(model, states):
    return [states[s.name] for s in model.state_specs()]


def next_states(model, out):
    return {s.name: out[mf.state_output(s.name)] for s in model.state_specs()}


def run_steps(model, targets, condition):
    """The step path pixel by pixel in raster order (teacher forcing): log-probs [B, T, V]."""
    B, T = targets.shape
    states = model.initial_states(model.encode(condition))
    row, k = torch.arange(B), torch.tensor([2])
    token = torch.full((B,), BORDER, dtype=torch.long)
    lps = []
    for t in range(T):
        out = model.step(token, row, row, k, *state_list(model, states))
        lps.append(out[mf.LOGPROBS])
        states = next_states(model, out)
        token = targets[:, t]
    return torch.stack(lps, 1)


def finite(lp):
    return lp[..., 4:]  # the non-blocked ids


def test_state_specs_and_encoder_outputs():
    m = make(height=4, width=6, n_conditions=3)
    specs = {s.name: s for s in m.state_specs()}
    assert list(specs) == ["pos", "h", "c", "row_h", "row_c", "row_tok", "cond"]
    assert (specs["pos"].shape, specs["pos"].dtype, specs["pos"].init) == (["N"], "int64", 0)
    assert specs["row_h"].shape == ["N", 6, 16] and specs["row_h"].init == "encoder"
    assert (specs["row_tok"].shape, specs["row_tok"].dtype, specs["row_tok"].init) == (["N", 6], "int64", BORDER)
    assert specs["cond"].shape == ["N", 6] and specs["cond"].init == "encoder"
    enc = m.encode(torch.tensor([0, 2]))
    assert sorted(enc) == sorted(m.encoder_output_names()) == ["state.cond", "state.row_c", "state.row_h"]
    assert enc["state.row_h"].shape == (2, 6, 16)
    assert not torch.allclose(enc["state.row_h"][0], enc["state.row_h"][1])  # the condition sets the top border
    assert m.memory_names == [] and m.attention is False and m.vocab_size == V
    u = make(n_conditions=0)
    assert [s.name for s in u.state_specs()] == ["pos", "h", "c", "row_h", "row_c", "row_tok"]
    assert sorted(u.encode(torch.tensor([0, 0, 0]))) == ["state.row_c", "state.row_h"]


@pytest.mark.parametrize("height,width,n_conditions", [(4, 6, 3), (4, 6, 0), (5, 1, 2), (1, 5, 0), (3, 2, 2)])
def test_forward_equals_step_path(height, width, n_conditions):
    m = make(height, width, n_conditions)
    B, T = 3, height * width
    targets = images(B, T)
    condition = torch.tensor([0, 1, 1]) if n_conditions else torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        fwd = m(targets, condition)
        stp = run_steps(m, targets, condition)
    assert fwd.shape == stp.shape == (B, T, V)
    torch.testing.assert_close(finite(fwd), finite(stp), atol=1e-5, rtol=0)
    assert torch.isneginf(fwd[..., :4]).all() and torch.isneginf(stp[..., :4]).all()


def test_causality():
    m = make(4, 6)
    T = 24
    targets, condition = images(2, T), torch.tensor([0, 2])
    with torch.no_grad():
        base = m(targets, condition)
        for k in (0, 5, 6, 13, 22):
            changed = targets.clone()
            changed[:, k] = 4 + (changed[:, k] - 4 + 1) % Q
            lp = m(changed, condition)
            torch.testing.assert_close(finite(lp[:, : k + 1]), finite(base[:, : k + 1]), atol=0, rtol=0)
            assert (finite(lp[:, k + 1:]) - finite(base[:, k + 1:])).abs().max() > 1e-4


def pixel_sensitivity(m, targets, condition, changed_pixel, at_pixel):
    W = m.cfg.width
    k = changed_pixel[0] * W + changed_pixel[1]
    t = at_pixel[0] * W + at_pixel[1]
    changed = targets.clone()
    changed[:, k] = 4 + (changed[:, k] - 4 + 1) % Q
    with torch.no_grad():
        return (finite(m(changed, condition)[:, t]) - finite(m(targets, condition)[:, t])).abs().max().item()


def test_cell_reads_left_and_up_neighbours_only():
    m = make(4, 6)
    targets, condition = images(2, 24), torch.tensor([1, 2])
    i, j = 2, 3
    assert pixel_sensitivity(m, targets, condition, (i - 1, j), (i, j)) > 1e-4  # up
    assert pixel_sensitivity(m, targets, condition, (i, j - 1), (i, j)) > 1e-4  # left
    # two pixels away a change reaches (i, j) only through the up (resp. left) cell states
    assert pixel_sensitivity(m, targets, condition, (i - 2, j), (i, j)) > 1e-5
    assert pixel_sensitivity(m, targets, condition, (i, j - 2), (i, j)) > 1e-5
    assert pixel_sensitivity(m, targets, condition, (0, 0), (i, j)) > 1e-6  # the whole upper-left quadrant
    # a 2-D LSTM over left/up does not see the upper-right pixel (unlike a raster LSTM)
    assert pixel_sensitivity(m, targets, condition, (i - 1, j + 1), (i, j)) == 0.0


def test_blocked_ids_and_normalisation():
    m = make(3, 4)
    targets, condition = images(3, 12), torch.tensor([0, 1, 2])
    with torch.no_grad():
        for lp in (m(targets, condition), run_steps(m, targets, condition)):
            assert torch.isneginf(lp[..., BLOCKED]).all()
            torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 12), atol=1e-5, rtol=0)
        out = m.step(torch.full((3,), BORDER), torch.arange(3), torch.arange(3), torch.tensor([V]),
                     *state_list(m, m.initial_states(m.encode(condition))))
    assert (out[mf.TOPK_IDS][:, :Q] >= 4).all()  # the Q finite ids come first, never a special


def test_row_reorder_gathers_every_state():
    m = make(3, 4)
    B = 3
    targets, condition = images(B, 12), torch.tensor([0, 1, 2])
    states = m.initial_states(m.encode(condition))
    rows, k = torch.arange(B), torch.tensor([3])
    token = torch.full((B,), BORDER)
    with torch.no_grad():
        for t in range(6):  # rows now differ in every state, mid-row (pos=6, j=2)
            out = m.step(token, rows, rows, k, *state_list(m, states))
            states, token = next_states(m, out), targets[:, t]
        perm = torch.tensor([1, 0, 2])
        a = m.step(token[perm], perm, perm, k, *state_list(m, states))
        swapped = {n: s[perm] for n, s in states.items()}
        b = m.step(token[perm], rows, perm, k, *state_list(m, swapped))
    for name in m.step_output_names():
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0)
    assert not torch.allclose(finite(a[mf.LOGPROBS])[0], finite(a[mf.LOGPROBS])[1])


def test_onnx_step_matches_torch_at_another_batch_size(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    m = make(3, 4, n_conditions=3)
    path = tmp_path / "step.onnx"
    ex_states = m.initial_states(m.encode(torch.tensor([0, 1])))
    args = (torch.tensor([5, 6]), torch.tensor([1, 0]), torch.tensor([1, 0]), torch.tensor([3]),
            *state_list(m, ex_states))
    ins, outs = m.step_input_names(), m.step_output_names()
    axes = {mf.TOKEN: {0: "N"}, mf.ROW: {0: "N"}, mf.BATCH_OF_ROW: {0: "N"}, mf.LOGPROBS: {0: "N"},
            mf.TOPK_LOGPROBS: {0: "N", 1: "K"}, mf.TOPK_IDS: {0: "N", 1: "K"}}
    for s in m.state_specs():
        axes[mf.state_input(s.name)] = {0: "N_prev"}
        axes[mf.state_output(s.name)] = {0: "N"}
    with torch.no_grad():
        _quiet_export(StepGraph(m).eval(), args, path, ins, outs, axes)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ins

    N = 5
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        states = m.initial_states(m.encode(torch.tensor([0, 1, 2, 2, 1])))
    ort_states = {n: s.numpy() for n, s in states.items()}
    token = torch.full((N,), BORDER)
    k = torch.tensor([2])
    for t in range(14):  # the 12 pixels and 2 more: j and i wrap, rows reordered on the way
        row = torch.randperm(N, generator=g) if t % 3 == 2 else torch.arange(N)
        with torch.no_grad():
            out = m.step(token, row, row, k, *state_list(m, states))
        feed = {mf.TOKEN: token.numpy(), mf.ROW: row.numpy(), mf.BATCH_OF_ROW: row.numpy(), mf.TOPK: k.numpy()}
        feed.update({mf.state_input(s.name): ort_states[s.name] for s in m.state_specs()})
        got = dict(zip(outs, sess.run(outs, feed)))
        np.testing.assert_allclose(got[mf.LOGPROBS][:, 4:], out[mf.LOGPROBS][:, 4:].numpy(), atol=1e-5, rtol=0)
        assert np.isneginf(got[mf.LOGPROBS][:, :4]).all()
        np.testing.assert_array_equal(got[mf.TOPK_IDS], out[mf.TOPK_IDS].numpy())
        for s in m.state_specs():
            np.testing.assert_allclose(got[mf.state_output(s.name)], out[mf.state_output(s.name)].numpy(), atol=1e-5)
        states = next_states(m, out)
        ort_states = {s.name: got[mf.state_output(s.name)] for s in m.state_specs()}
        token = out[mf.TOPK_IDS][:, 0]
    assert (ort_states["pos"] == 14).all()


def test_training_on_digits_lowers_nll():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = torch.tensor(digits.images[:256], dtype=torch.long)  # [n, 8, 8], values 0..16
    targets = 4 + torch.clamp(x * Q // 17, max=Q - 1).reshape(len(x), 64)
    labels = torch.tensor(digits.target[:256], dtype=torch.long)
    torch.manual_seed(0)
    cfg = GeneratorConfig(unit="pixel", arch="grid", emb_dim=8, hidden=32, cond_dim=8, n_conditions=10,
                          height=8, width=8, blocked_ids=list(BLOCKED))
    m = GridGenerator(cfg, V)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    with torch.no_grad():
        before = m.loss(targets, labels)[0].item()
    g = torch.Generator().manual_seed(0)
    for _ in range(15):
        idx = torch.randint(0, len(targets), (32,), generator=g)
        loss, n = m.loss(targets[idx], labels[idx])
        assert n == 32 * 64
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = m.loss(targets, labels)[0].item()
    assert before > 1.2 and after < 0.75 * before, (before, after)
