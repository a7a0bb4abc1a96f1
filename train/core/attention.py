"""Match functions of the notes: how well decoder state z matches each memory position.

Each match function is split in two so that the step graph stays small:

* `key(memory)` [B, L, D] -> memory_key [B, L, A], run ONCE in the encoder graph;
* `score(z, memory_key)` z [N, H], memory_key [N, L, A] -> scores [N, L], run every step.

`masked_softmax` turns scores into the attention weights alpha over real positions only.
"""

from __future__ import annotations

import torch
from torch import nn

NEG = -1e9  # finite, so a fully masked row (never produced) would not give NaN


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax over axis 1 of scores [N, L] where mask [N, L] (bool, True = real) holds."""
    scores = torch.where(mask, scores, torch.full_like(scores, NEG))
    return torch.softmax(scores, dim=1)


class DotMatch(nn.Module):
    """score = z . h (the key is the memory itself; needs H == D)."""

    def key(self, memory: torch.Tensor) -> torch.Tensor:
        return memory

    def score(self, z: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return torch.bmm(key, z.unsqueeze(2)).squeeze(2)


class GeneralMatch(nn.Module):
    """score = z . (W h): bilinear (Luong's "general")."""

    def __init__(self, mem_dim: int, dec_dim: int):
        super().__init__()
        self.W = nn.Linear(mem_dim, dec_dim, bias=False)

    def key(self, memory: torch.Tensor) -> torch.Tensor:
        return self.W(memory)

    def score(self, z: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return torch.bmm(key, z.unsqueeze(2)).squeeze(2)


class AdditiveMatch(nn.Module):
    """score = v . tanh(W_h h + W_z z): the small MLP of Bahdanau et al."""

    def __init__(self, mem_dim: int, dec_dim: int, att_dim: int):
        super().__init__()
        self.W_h = nn.Linear(mem_dim, att_dim, bias=True)
        self.W_z = nn.Linear(dec_dim, att_dim, bias=False)
        self.v = nn.Linear(att_dim, 1, bias=False)

    def key(self, memory: torch.Tensor) -> torch.Tensor:
        return self.W_h(memory)

    def score(self, z: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return self.v(torch.tanh(key + self.W_z(z).unsqueeze(1))).squeeze(2)


class CosineMatch(nn.Module):
    """score = s * cos(z, W h), s a learnable scale (cosine alone is too flat to be sharp).

    The key is stored already unit-normalised, so the step only normalises z.
    """

    def __init__(self, mem_dim: int, dec_dim: int, init_scale: float = 5.0):
        super().__init__()
        self.W = nn.Linear(mem_dim, dec_dim, bias=False)
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))

    @staticmethod
    def _unit(x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt((x * x).sum(-1, keepdim=True) + 1e-8)

    def key(self, memory: torch.Tensor) -> torch.Tensor:
        return self._unit(self.W(memory))

    def score(self, z: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.bmm(key, self._unit(z).unsqueeze(2)).squeeze(2)


def make_match(kind: str, mem_dim: int, dec_dim: int, att_dim: int) -> nn.Module:
    if kind == "dot":
        return DotMatch()
    if kind == "general":
        return GeneralMatch(mem_dim, dec_dim)
    if kind == "additive":
        return AdditiveMatch(mem_dim, dec_dim, att_dim)
    if kind == "cosine":
        return CosineMatch(mem_dim, dec_dim)
    raise ValueError(f"unknown attention {kind!r}")
