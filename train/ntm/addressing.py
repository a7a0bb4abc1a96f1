"""The Neural Turing Machine's memory addressing, reading and writing (Graves et al. 2014,
arXiv:1410.5401, Section 3), one small function per stage.

The lecture notes' version is content addressing alone: alpha_i = cos(m_i, k) -> softmax,
then m_i <- m_i * (1 - alpha_i e) + alpha_i a. The paper adds location addressing, so a
head can also move relative to where it was (the copy task's "next slot"):

    w_c  = content_weights(M, k, beta)       3.3.1  softmax_i(beta * cos(M_i, k))
    w_g  = interpolate(w_c, w_prev, g)       3.3.2  g w_c + (1 - g) w_prev        (eq. 7)
    w~   = shift(w_g, s)                     3.3.2  w~_i = sum_j w_j s_{i-j}       (eq. 8)
    w    = sharpen(w~, gamma)                3.3.2  w~_i^gamma / sum_j w~_j^gamma  (eq. 9)
    r    = read(M, w)                        3.1    sum_i w_i M_i                  (eq. 2)
    M'   = write(M, w, e, a)                 3.2    M_i (1 - w_i e) + w_i a        (eqs. 3, 4)

Shapes: every function is batched over a leading row axis N; memory is [N, S, W]
(S slots of width W), a weighting is [N, S], per-row scalars are [N, 1].

Everything is plain torch ops without data-dependent Python control flow or in-place
writes, so it traces through the legacy ONNX exporter (torch.onnx.export(dynamo=False))
with N dynamic. The only Python loop is over the K = 2r + 1 allowed shifts in `shift`,
a configuration constant.
"""

from __future__ import annotations

import torch

EPS = 1e-8
MASKED = -1e9  # score of a masked slot: exp() underflows to exactly 0, and ONNX stays finite


def cosine_similarity(memory: torch.Tensor, key: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Section 3.3.1 (eq. 6): K[M_i, k] = M_i . k / (||M_i|| ||k||) for every slot i.

    memory [N, S, W], key [N, W] -> [N, S]. The norms are sqrt(sum x^2 + eps), so a zero
    row (or key) gives similarity 0 with a finite gradient instead of 0/0.
    """
    dot = torch.matmul(memory, key.unsqueeze(-1)).squeeze(-1)  # [N, S]
    m_norm = torch.sqrt((memory * memory).sum(-1) + eps)  # [N, S]
    k_norm = torch.sqrt((key * key).sum(-1, keepdim=True) + eps)  # [N, 1]
    return dot / (m_norm * k_norm)


def content_weights(memory: torch.Tensor, key: torch.Tensor, beta: torch.Tensor, eps: float = EPS,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """Section 3.3.1 (eq. 5): w_c = softmax_i(beta * K[M_i, k]).

    memory [N, S, W], key [N, W], beta [N, 1] (the key strength, >= 0: softplus upstream;
    beta = 0 gives the uniform weighting, large beta focuses on the best match) -> [N, S].
    mask [N, S] (bool, optional): slots that exist; the others get weight exactly 0 (a
    memory made of variable-length encoder outputs is padded; see train/translate/ntm_decoder.py).
    """
    scores = beta * cosine_similarity(memory, key, eps)
    if mask is not None:
        scores = scores.masked_fill(~mask, MASKED)
    return torch.softmax(scores, dim=-1)


def interpolate(w_content: torch.Tensor, w_prev: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Section 3.3.2 (eq. 7): w_g = g w_c + (1 - g) w_prev.

    w_content, w_prev [N, S]; g [N, 1] in [0, 1] (sigmoid upstream): g = 1 is pure content
    addressing, g = 0 keeps last step's weighting (and ignores the key). -> [N, S].
    """
    return g * w_content + (1.0 - g) * w_prev


def shift(w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Section 3.3.2 (eq. 8): circular convolution w~_i = sum_j w_j s_{i - j}, indices mod S.

    w [N, S]; s [N, K], K = 2r + 1 odd, a distribution over the shifts -r .. r: column k
    is the weight of shift d = k - r. With the paper's equation, shift d moves mass FORWARD
    by d slots: w~_i = sum_d s_d w_{i - d}, so all weight on d = +1 sends slot j's weight
    to slot j + 1 (and slot S - 1's to slot 0, wrapping around); d = -1 moves it to j - 1.
    torch.roll(w, d)[i] = w[i - d] is exactly that term. -> [N, S].
    """
    K = s.shape[-1]
    if K % 2 != 1:
        raise ValueError(f"shift needs an odd number of shift weights (K = 2r + 1), got K={K}")
    r = K // 2
    out = s[:, 0:1] * torch.roll(w, shifts=-r, dims=-1)
    for k in range(1, K):
        out = out + s[:, k : k + 1] * torch.roll(w, shifts=k - r, dims=-1)
    return out


def sharpen(w: torch.Tensor, gamma: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Section 3.3.2 (eq. 9): w_i = w~_i^gamma / sum_j w~_j^gamma.

    w [N, S] (>= 0), gamma [N, 1] >= 1 (1 + softplus upstream): undoes the blur of a
    fractional shift. eps in the denominator only guards an all-zero row. -> [N, S].
    """
    p = torch.pow(w, gamma)
    return p / (p.sum(-1, keepdim=True) + eps)


def address(memory: torch.Tensor, key: torch.Tensor, beta: torch.Tensor, g: torch.Tensor, s: torch.Tensor,
            gamma: torch.Tensor, w_prev: torch.Tensor, eps: float = EPS,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """Section 3.3 (Figure 2): content -> interpolation -> convolutional shift -> sharpening.

    memory [N, S, W], key [N, W], beta [N, 1], g [N, 1], s [N, K], gamma [N, 1],
    w_prev [N, S] (this head's weighting at the previous step) -> w [N, S].
    mask [N, S]: see `content_weights`; padding stays at 0 through interpolation and
    sharpening when w_prev is 0 there and there is no shift (K = 1), so the result does not
    depend on how much padding a batch adds.
    """
    w_c = content_weights(memory, key, beta, eps, mask)
    w_g = interpolate(w_c, w_prev, g)
    return sharpen(shift(w_g, s), gamma, eps)


def read(memory: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Section 3.1 (eq. 2): r = sum_i w_i M_i.

    memory [N, S, W]; w [N, S] -> [N, W], or w [N, R, S] (R heads at once) -> [N, R, W].
    """
    if w.dim() == 2:
        return torch.matmul(w.unsqueeze(1), memory).squeeze(1)
    return torch.matmul(w, memory)


def write(memory: torch.Tensor, w: torch.Tensor, erase: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """Section 3.2 (eqs. 3, 4), one write head: M'_i = M_i (1 - w_i e) + w_i a.

    memory [N, S, W]; w [N, S]; erase [N, W] in (0, 1) (sigmoid upstream); add [N, W]
    -> the new memory [N, S, W] (a new tensor; the input is untouched).
    """
    ww = w.unsqueeze(-1)  # [N, S, 1]
    return memory * (1.0 - ww * erase.unsqueeze(1)) + ww * add.unsqueeze(1)


def write_heads(memory: torch.Tensor, w: torch.Tensor, erase: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """Section 3.2 with H write heads: every head's erase first, then every head's add.

        M'_i = M_i prod_h (1 - w_{h,i} e_h) + sum_h w_{h,i} a_h

    As the paper notes, the erases commute (a product) and so do the adds (a sum), so the
    result does not depend on the order of the heads; with H = 1 it is `write`.
    memory [N, S, W]; w [N, H, S]; erase, add [N, H, W] -> [N, S, W].
    """
    keep = 1.0 - w[:, 0].unsqueeze(-1) * erase[:, 0].unsqueeze(1)
    added = w[:, 0].unsqueeze(-1) * add[:, 0].unsqueeze(1)
    for h in range(1, w.shape[1]):
        keep = keep * (1.0 - w[:, h].unsqueeze(-1) * erase[:, h].unsqueeze(1))
        added = added + w[:, h].unsqueeze(-1) * add[:, h].unsqueeze(1)
    return memory * keep + added
