"""Index helpers for padded batches of sequences, shared by the recurrent encoders
(the translator's and the speech listener's bidirectional LSTMs)."""

from __future__ import annotations

import torch


def reverse_index(lengths: torch.Tensor, S: int) -> torch.Tensor:
    """idx[b, t] = len_b - 1 - t for t < len_b, else t: reverses each item within its length.

    Applying the same gather twice is the identity, so it also un-reverses.
    """
    t = torch.arange(S, device=lengths.device).unsqueeze(0)
    L = lengths.unsqueeze(1)
    return torch.where(t < L, L - 1 - t, t)


def gather_time(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [B, S, E] reordered along time by idx [B, S]."""
    return torch.gather(x, 1, idx.unsqueeze(2).expand(-1, -1, x.size(2)))
