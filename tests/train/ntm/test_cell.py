"""The NTM cell (train/ntm/cell.py): config checks, explicit state, step order, gradients,
ONNX export of one step, and a small copy-task learning smoke test."""

import io
import warnings
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edge_s2s.runtime import manifest as mf
from edge_s2s.train.ntm import addressing as na
from edge_s2s.train.ntm.cell import NTMCell, NTMConfig

IN = 5


def small(**kw):
    base = dict(controller_size=16, memory_slots=6, memory_width=4, read_heads=2, write_heads=1, shift_range=1)
    base.update(kw)
    return NTMConfig(**base)


def run(cell, xs, state):
    outs = []
    for x in xs:
        out, state = cell(x, state)
        outs.append(out)
    return outs, state


# --- config ------------------------------------------------------------------------------


@pytest.mark.parametrize("kw, match", [
    (dict(controller="gru"), "controller must be one of"),
    (dict(memory_init="zeros"), "memory_init must be one of"),
    (dict(weight_init="uniform"), "weight_init must be one of"),
    (dict(controller_size=0), "controller_size must be a positive integer"),
    (dict(memory_slots=2.5), "memory_slots must be a positive integer"),
    (dict(memory_width=-1), "memory_width must be a positive integer"),
    (dict(read_heads=0), "read_heads must be a positive integer"),
    (dict(write_heads=0), "write_heads must be a positive integer"),
    (dict(shift_range=-1), "shift_range must be an integer >= 0"),
    (dict(memory_slots=4, shift_range=2), "need 2 \\* shift_range \\+ 1 <= memory_slots"),
    (dict(memory_init_value=float("nan")), "memory_init_value must be finite"),
])
def test_config_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        small(**kw)


def test_config_defaults_and_shift_count():
    cfg = NTMConfig()
    assert (cfg.controller, cfg.memory_init, cfg.weight_init) == ("lstm", "constant", "onehot")
    assert small(shift_range=2).n_shifts == 5 and small(shift_range=0).n_shifts == 1
    with pytest.raises(ValueError, match="input_size"):
        NTMCell(small(), 0)


# --- state and shapes ----------------------------------------------------------------------


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
def test_shapes_and_stable_state_keys(controller):
    torch.manual_seed(0)
    cell = NTMCell(small(controller=controller), IN)
    C, S, W, R, Wh = 16, 6, 4, 2, 1
    keys = ["ntm_memory", "read_w", "write_w", "read_vec"] + (["ctrl_h", "ctrl_c"] if controller == "lstm" else [])
    assert cell.state_names() == keys
    state = cell.initial_state(3)
    assert list(state) == keys
    out, new = cell(torch.randn(3, IN), state)
    assert list(new) == keys
    assert out.shape == (3, C + R * W) and cell.output_size == C + R * W
    shapes = {"ntm_memory": (3, S, W), "read_w": (3, R, S), "write_w": (3, Wh, S), "read_vec": (3, R, W),
              "ctrl_h": (3, C), "ctrl_c": (3, C)}
    for k in keys:
        assert state[k].shape == shapes[k] and new[k].shape == shapes[k], k
    # the manifest specs name the same states with the row axis "N"
    specs = cell.state_specs()
    assert [s.name for s in specs] == keys
    assert all(s.shape == ["N", *shapes[s.name][1:]] for s in specs)
    assert [mf.state_input(s.name) for s in specs][0] == "state.ntm_memory"
    # weights stay distributions after a step
    for k in ("read_w", "write_w"):
        assert (new[k] >= 0).all()
        torch.testing.assert_close(new[k].sum(-1), torch.ones(3, new[k].shape[1]), atol=1e-5, rtol=0)


def test_constant_memory_init_and_one_hot_weights():
    cell = NTMCell(small(memory_init="constant", memory_init_value=0.25), IN)
    assert not any("memory0" in n for n, _ in cell.named_parameters())
    st = cell.initial_state(2)
    assert torch.equal(st["ntm_memory"], torch.full((2, 6, 4), 0.25))
    onehot = torch.tensor([1.0, 0, 0, 0, 0, 0])
    assert torch.equal(st["read_w"], onehot.expand(2, 2, 6)) and torch.equal(st["write_w"], onehot.expand(2, 1, 6))
    assert torch.equal(st["read_vec"], torch.full((2, 2, 4), 0.25))  # row 0 of the memory
    assert torch.equal(st["ctrl_h"], torch.zeros(2, 16)) and torch.equal(st["ctrl_c"], torch.zeros(2, 16))


def test_learned_memory_and_weight_init():
    torch.manual_seed(0)
    cell = NTMCell(small(memory_init="learned", weight_init="learned"), IN)
    params = dict(cell.named_parameters())
    assert {"memory0", "read_w0_logits", "write_w0_logits"} <= set(params)
    st = cell.initial_state(3)
    for b in range(3):  # every row starts from the same learned memory
        assert torch.equal(st["ntm_memory"][b], params["memory0"].detach())
    assert st["ntm_memory"].std() > 0.1  # random, not constant
    # learned logits start at zero: a uniform softmax
    torch.testing.assert_close(st["read_w"], torch.full((3, 2, 6), 1 / 6))
    torch.testing.assert_close(st["read_vec"], params["memory0"].detach().mean(0).expand(3, 2, 4))
    with pytest.raises(ValueError, match="batch >= 1"):
        cell.initial_state(0)


# --- the step --------------------------------------------------------------------------------


def test_step_is_differentiable_to_memory_init_and_every_head():
    torch.manual_seed(0)
    cell = NTMCell(small(memory_init="learned", weight_init="learned", write_heads=2), IN)
    outs, st = run(cell, torch.randn(2, 3, IN), cell.initial_state(3))
    g = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs)
    loss = loss + sum((t * torch.randn(t.shape, generator=g)).sum() for t in st.values())
    loss.backward()
    for name, p in cell.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    for head in [*cell.read_heads, *cell.write_heads]:
        assert head.weight.grad.abs().sum() > 0


def test_order_write_heads_on_old_memory_reads_on_the_written_memory():
    torch.manual_seed(3)
    cell = NTMCell(small(memory_init="learned"), IN)
    # one step from the initial state, then check a second step (non-trivial previous weights)
    _, state = cell(torch.randn(4, IN), cell.initial_state(4))
    out, new = cell(torch.randn(4, IN), state)
    h = out[:, : cell.cfg.controller_size]  # the controller output is the head of the output
    old_m, new_m = state["ntm_memory"], new["ntm_memory"]

    p = cell.head_params(cell.write_heads[0], cell.write_sizes, h)
    w_write = na.address(old_m, p["key"], p["beta"], p["g"], p["s"], p["gamma"], state["write_w"][:, 0])
    torch.testing.assert_close(new["write_w"][:, 0], w_write)  # addressed on M_{t-1}
    torch.testing.assert_close(new_m, na.write(old_m, w_write, p["erase"], p["add"]))
    assert (new_m - old_m).abs().max() > 1e-2  # the write changed the memory

    for k in range(cell.cfg.read_heads):
        p = cell.head_params(cell.read_heads[k], cell.read_sizes, h)
        args = (p["key"], p["beta"], p["g"], p["s"], p["gamma"], state["read_w"][:, k])
        torch.testing.assert_close(new["read_w"][:, k], na.address(new_m, *args))  # addressed on M_t
        assert (na.address(old_m, *args) - new["read_w"][:, k]).abs().max() > 1e-4
    # and the read vectors are read from the written memory, not the old one
    torch.testing.assert_close(new["read_vec"], na.read(new_m, new["read_w"]))
    assert (na.read(old_m, new["read_w"]) - new["read_vec"]).abs().max() > 1e-3
    torch.testing.assert_close(out[:, cell.cfg.controller_size:], new["read_vec"].flatten(1))


def test_feedforward_controller_has_no_controller_state_and_uses_the_reads():
    torch.manual_seed(0)
    cell = NTMCell(small(controller="feedforward"), IN)
    st = cell.initial_state(2)
    assert "ctrl_h" not in st and "ctrl_c" not in st
    x = torch.randn(2, IN)
    out, new = cell(x, st)
    torch.testing.assert_close(out[:, :16], torch.tanh(cell.ctrl(torch.cat([x, st["read_vec"].flatten(1)], -1))))
    # the same input with different previous reads gives a different controller output
    st2 = dict(st, read_vec=st["read_vec"] + 1.0)
    out2, _ = cell(x, st2)
    assert (out2[:, :16] - out[:, :16]).abs().max() > 1e-3


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
def test_batch_rows_are_independent(controller):
    torch.manual_seed(0)
    cell = NTMCell(small(controller=controller, memory_init="learned"), IN)
    xs = torch.randn(3, 2, IN)
    xs2 = xs.clone()
    xs2[:, 1] += torch.randn(3, IN)  # only row 1 changes
    outs, st = run(cell, xs, cell.initial_state(2))
    outs2, st2 = run(cell, xs2, cell.initial_state(2))
    for o, o2 in zip(outs, outs2):
        torch.testing.assert_close(o[0], o2[0])
        assert (o[1] - o2[1]).abs().max() > 1e-4
    for k in st:
        torch.testing.assert_close(st[k][0], st2[k][0])


# --- ONNX --------------------------------------------------------------------------------------


class OneStep(nn.Module):
    """x and every state positional in, output and every new state out (state_names order)."""

    def __init__(self, cell: NTMCell):
        super().__init__()
        self.cell = cell

    def forward(self, x, *states):
        names = self.cell.state_names()
        out, new = self.cell(x, dict(zip(names, states)))
        return (out, *(new[n] for n in names))


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
def test_one_step_exports_to_onnx_and_matches_torch(tmp_path, controller):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    cell = NTMCell(small(controller=controller, memory_init="learned", shift_range=2, write_heads=2), IN).eval()
    names = cell.state_names()
    in_names = ["x", *(mf.state_input(n) for n in names)]
    out_names = ["output", *(mf.state_output(n) for n in names)]

    def states_after(N, steps, seed):
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            _, st = run(cell, torch.randn(steps, N, IN, generator=g), cell.initial_state(N))
        return torch.randn(N, IN, generator=g), [st[n] for n in names]

    x, states = states_after(2, 1, 0)
    path = tmp_path / "ntm_step.onnx"
    with torch.no_grad(), warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(OneStep(cell), (x, *states), str(path), dynamo=False, opset_version=17,
                          input_names=in_names, output_names=out_names,
                          dynamic_axes={n: {0: "N"} for n in in_names + out_names})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == in_names

    x, states = states_after(5, 3, 1)  # another batch size, non-trivial state
    with torch.no_grad():
        expect = OneStep(cell)(x, *states)
    got = sess.run(out_names, {n: t.numpy() for n, t in zip(in_names, [x, *states])})
    for name, e, g in zip(out_names, expect, got):
        assert g.shape == tuple(e.shape), name
        np.testing.assert_allclose(g, e.numpy(), atol=1e-5, rtol=0, err_msg=name)


# --- learning ------------------------------------------------------------------------------------


def copy_batch(g, B, length=3, bits=4):
    """Input: the sequence, a delimiter (its own channel), then zeros; target: the sequence."""
    seq = (torch.rand(B, length, bits, generator=g) < 0.5).float()
    x = torch.cat([torch.cat([seq, torch.zeros(B, length, 1)], -1),
                   torch.cat([torch.zeros(B, 1, bits), torch.ones(B, 1, 1)], -1),
                   torch.zeros(B, length, bits + 1)], 1)
    return x, seq


@pytest.mark.parametrize("controller, seed", [("lstm", 0), ("feedforward", 3)])
def test_copy_task_loss_drops(controller, seed):
    """100 Adam steps on copying 3 random 4-bit vectors. With the feedforward controller
    the memory is the only path from the input steps to the output steps, so the drop
    there shows that writing and reading work (zeroing the read vectors stalls it)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    cell = NTMCell(NTMConfig(controller=controller, controller_size=32, memory_slots=8, memory_width=8), 4 + 1)
    readout = nn.Linear(cell.output_size, 4)
    opt = torch.optim.Adam([*cell.parameters(), *readout.parameters()], lr=1e-2)
    losses = []
    for _ in range(100):
        x, seq = copy_batch(g, 32)
        outs, _ = run(cell, x.transpose(0, 1), cell.initial_state(32))
        logits = readout(torch.stack(outs[4:], 1))  # the 3 steps after the delimiter
        loss = F.binary_cross_entropy_with_logits(logits, seq)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert first > 0.6  # chance is ln 2 = 0.693
    assert last < 0.75 * first, (first, last)
