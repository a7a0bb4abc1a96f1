"""NTM addressing, reading and writing (train/ntm/addressing.py) against hand-worked numbers."""

import math

import pytest
import torch

from edge_s2s.train.ntm.addressing import (
    address,
    content_weights,
    cosine_similarity,
    interpolate,
    read,
    sharpen,
    shift,
    write,
    write_heads,
)

T = torch.tensor
SQ = math.sqrt(0.5)  # 1 / sqrt(2) = 0.70710678

# S = 3 slots of width W = 2:  m0 = [1, 0], m1 = [0, 1], m2 = [1, 1]
M3 = T([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def close(a, b, tol=1e-6):
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), atol=tol, rtol=0)


def is_distribution(w):
    assert (w >= 0).all()
    close(w.sum(-1), torch.ones(w.shape[:-1]), 1e-5)


# --- 3.3.1 content addressing ---------------------------------------------------------------


def test_cosine_similarity_hand_worked():
    memory = M3.expand(3, 3, 2)
    keys = T([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    # key [1, 0]:  m0: 1/(1*1) = 1   m1: 0/(1*1) = 0   m2: 1/(sqrt2*1) = 0.7071
    # key [0, 2]:  m0: 0             m1: 2/(1*2) = 1   m2: 2/(sqrt2*2) = 0.7071 (scale-free)
    # key [-1, 0]: m0: -1            m1: 0             m2: -1/sqrt2 = -0.7071
    close(cosine_similarity(memory, keys), [[1, 0, SQ], [0, 1, SQ], [-1, 0, -SQ]])


def test_cosine_similarity_of_a_zero_row_is_zero_with_finite_gradient():
    memory = T([[[0.0, 0.0], [3.0, 4.0]]]).requires_grad_()
    key = T([[3.0, 4.0]]).requires_grad_()
    cos = cosine_similarity(memory, key)
    close(cos, [[0.0, 1.0]])  # [3,4].[3,4] / (5*5) = 1
    cos.sum().backward()
    assert torch.isfinite(memory.grad).all() and torch.isfinite(key.grad).all()


def test_content_weights_hand_worked():
    memory = M3.expand(3, 3, 2)
    key = T([[1.0, 0.0]]).expand(3, 2)
    beta = T([[1.0], [2.0], [0.0]])
    # cos = [1, 0, 0.7071]
    # beta 1: exp = [2.71828, 1, 2.02811], sum 5.74640 -> [0.473041, 0.174022, 0.352937]
    # beta 2: exp = [7.38906, 1, 4.11325], sum 12.50231 -> [0.591015, 0.079985, 0.328999]
    # beta 0: every exp is 1 -> uniform [1/3, 1/3, 1/3]
    w = content_weights(memory, key, beta)
    close(w, [[0.473041, 0.174022, 0.352937], [0.591015, 0.079985, 0.328999], [1 / 3, 1 / 3, 1 / 3]])
    is_distribution(w)


# --- 3.3.2 location addressing --------------------------------------------------------------


def test_interpolate_hand_worked():
    wc = T([[0.5, 0.3, 0.2]]).expand(3, 3)
    wp = T([[0.0, 0.0, 1.0]]).expand(3, 3)
    g = T([[0.25], [1.0], [0.0]])
    # g = 0.25: 0.25*[.5, .3, .2] + 0.75*[0, 0, 1] = [0.125, 0.075, 0.05 + 0.75 = 0.8]
    # g = 1: the content weights; g = 0: the previous weights
    w = interpolate(wc, wp, g)
    close(w, [[0.125, 0.075, 0.8], [0.5, 0.3, 0.2], [0.0, 0.0, 1.0]])
    is_distribution(w)


def test_shift_by_plus_one_moves_mass_forward_and_wraps_around():
    w = T([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    # s over shifts (-1, 0, +1)
    s = T([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.1, 0.8, 0.1]])
    # +1: w~_i = w_{i-1}: [w3, w0, w1, w2] = [0.4, 0.1, 0.2, 0.3] (slot 3 wraps to slot 0)
    # +1 on a one-hot at slot 0 -> slot 1
    # -1: w~_i = w_{i+1}: slot 0 wraps around to slot 3
    # [0.1, 0.8, 0.1]: 0.8 stays at 0, 0.1 moves to slot 1 (+1), 0.1 to slot 3 (-1)
    out = shift(w, s)
    close(out, [[0.4, 0.1, 0.2, 0.3], [0, 1, 0, 0], [0, 0, 0, 1], [0.8, 0.1, 0.0, 0.1]])
    is_distribution(out)


def test_shift_matches_the_papers_equation_and_larger_ranges():
    # eq. 8 literally: w~_i = sum_j w_j s((i - j) mod S), with s(d) the weight of shift d
    g = torch.Generator().manual_seed(0)
    S, r = 6, 2
    w = torch.softmax(torch.randn(2, S, generator=g), -1)
    s = torch.softmax(torch.randn(2, 2 * r + 1, generator=g), -1)
    expect = torch.zeros(2, S)
    for n in range(2):
        for i in range(S):
            for j in range(S):
                d = (i - j) % S
                d = d - S if d > S // 2 else d  # the signed shift -r..r, if allowed
                if -r <= d <= r:
                    expect[n, i] += w[n, j] * s[n, d + r]
    close(shift(w, s), expect)
    # +2 (the last of the K = 5 shifts) on a one-hot at slot 5 wraps to slot 1
    close(shift(T([[0, 0, 0, 0, 0, 1.0]]), T([[0, 0, 0, 0, 1.0]])), [[0, 1.0, 0, 0, 0, 0]])


def test_shift_rejects_an_even_number_of_shifts():
    with pytest.raises(ValueError, match="odd number"):
        shift(torch.ones(1, 4) / 4, torch.ones(1, 2) / 2)


def test_sharpen_hand_worked():
    w = T([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]])
    gamma = T([[2.0], [1.0]])
    # gamma 2: [.25, .09, .04] / .38 = [25, 9, 4] / 38;  gamma 1: unchanged
    out = sharpen(w, gamma)
    close(out, [[25 / 38, 9 / 38, 4 / 38], [0.5, 0.3, 0.2]])
    is_distribution(out)
    assert out[0, 0] > w[0, 0]  # sharper: the peak grows


def test_address_chains_the_four_stages_hand_worked():
    memory = M3.unsqueeze(0)
    # beta 0 -> content uniform [1/3]*3; g 0.5 with w_prev [1, 0, 0] -> [2/3, 1/6, 1/6];
    # shift +1 -> [1/6, 2/3, 1/6]; gamma 2 -> [1, 16, 1]/36 / (18/36) = [1, 16, 1] / 18
    w = address(memory, T([[1.0, 0.0]]), T([[0.0]]), T([[0.5]]), T([[0.0, 0.0, 1.0]]), T([[2.0]]),
                T([[1.0, 0.0, 0.0]]))
    close(w, [[1 / 18, 16 / 18, 1 / 18]])


def test_every_stage_outputs_distributions_on_random_inputs():
    g = torch.Generator().manual_seed(1)
    N, S, W, K = 5, 7, 4, 3
    memory = torch.randn(N, S, W, generator=g)
    key = torch.randn(N, W, generator=g)
    beta = torch.rand(N, 1, generator=g) * 10
    wc = content_weights(memory, key, beta)
    w_prev = torch.softmax(torch.randn(N, S, generator=g), -1)
    wg = interpolate(wc, w_prev, torch.rand(N, 1, generator=g))
    ws = shift(wg, torch.softmax(torch.randn(N, K, generator=g), -1))
    wf = sharpen(ws, 1 + torch.rand(N, 1, generator=g) * 5)
    for w in (wc, wg, ws, wf):
        assert w.shape == (N, S)
        is_distribution(w)


# --- 3.1 reading, 3.2 writing ---------------------------------------------------------------

M_RW = T([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])


def test_read_is_the_weighted_sum_of_rows():
    # 0.2*[1, 2] + 0.3*[3, 4] + 0.5*[5, 6] = [0.2 + 0.9 + 2.5, 0.4 + 1.2 + 3.0] = [3.6, 4.6]
    close(read(M_RW, T([[0.2, 0.3, 0.5]])), [[3.6, 4.6]])
    close(read(M_RW, T([[0.0, 1.0, 0.0]])), [[3.0, 4.0]])  # a one-hot picks its row
    # R heads at once: [N, R, S] -> [N, R, W]
    close(read(M_RW, T([[[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]])), [[[3.6, 4.6], [1.0, 2.0]]])


def test_write_erase_all_at_a_one_hot_replaces_the_row():
    before = M_RW.clone()
    new = write(M_RW, T([[0.0, 1.0, 0.0]]), T([[1.0, 1.0]]), T([[7.0, 8.0]]))
    # row 1: [3, 4] * (1 - 1) + [7, 8]; rows 0 and 2: weight 0, unchanged
    close(new, [[[1.0, 2.0], [7.0, 8.0], [5.0, 6.0]]])
    close(M_RW, before)  # the input memory is not written in place


def test_write_with_zero_weight_leaves_memory_unchanged():
    new = write(M_RW, torch.zeros(1, 3), T([[0.9, 0.3]]), T([[-5.0, 5.0]]))
    close(new, M_RW)


def test_write_partial_erase_hand_worked():
    new = write(M_RW, T([[0.5, 0.0, 0.5]]), T([[0.5, 1.0]]), T([[1.0, 0.0]]))
    # w e = 0.5*[0.5, 1] = [0.25, 0.5] on rows 0 and 2, w a = 0.5*[1, 0] = [0.5, 0]
    # row 0: [1*0.75, 2*0.5] + [0.5, 0] = [1.25, 1.0]
    # row 1: weight 0 -> [3, 4]
    # row 2: [5*0.75, 6*0.5] + [0.5, 0] = [4.25, 3.0]
    close(new, [[[1.25, 1.0], [3.0, 4.0], [4.25, 3.0]]])


def test_write_heads_erase_then_add_and_heads_commute():
    g = torch.Generator().manual_seed(2)
    N, H, S, W = 2, 2, 4, 3
    memory = torch.randn(N, S, W, generator=g)
    w = torch.softmax(torch.randn(N, H, S, generator=g), -1)
    e = torch.rand(N, H, W, generator=g)
    a = torch.randn(N, H, W, generator=g)
    # one head: exactly `write`
    close(write_heads(memory, w[:, :1], e[:, :1], a[:, :1]), write(memory, w[:, 0], e[:, 0], a[:, 0]))
    # the order of the heads does not matter
    close(write_heads(memory, w, e, a), write_heads(memory, w.flip(1), e.flip(1), a.flip(1)))
    # both heads erase all of slot 0 and add there: every erase comes before every add,
    # so neither erase wipes the other head's add: slot 0 = m0 * 0 * 0 + a0 + a1
    onehot = T([1.0, 0.0, 0.0, 0.0]).expand(1, 2, 4)
    new = write_heads(memory[:1], onehot, torch.ones(1, 2, W), a[:1])
    close(new[0, 0], a[0, 0] + a[0, 1])
    close(new[0, 1:], memory[0, 1:])
