"""The Neural Turing Machine as a token decoder: the bundle contract around `NTMCell`.

    x_t          = E[token]                         (the previous token; <s> at step 0)
    out, state'  = NTMCell(x_t, state)              controller + write heads + read heads
    p(y_t)       = softmax(W out + b), blocked ids excluded

Every NTM state (memory [N, S, W], read/write weightings, read vectors, controller h/c)
is a `state.*` tensor of the step graph, gathered with `row` first like any other state,
so beam search and the runtime loop need no NTM-specific code. The encoder only turns
the condition (unused, 0) into the initial states, as for the other generators.
Teacher-forced training unrolls the same `step_core` (an NTM step depends on the memory
the previous step wrote, so there is no faster whole-sequence path).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...runtime.manifest import StateSpec
from ...runtime.text import Vocab
from ..core.step_contract import DecoderContract
from ..generate.config import block
from . import addressing as na
from .cell import CTRL_C, CTRL_H, MEMORY, READ_VEC, READ_W, WRITE_W, NTMCell, NTMConfig


class NTMDecoder(DecoderContract, nn.Module):
    """Token embedding -> NTMCell -> softmax over the vocabulary."""

    memory_names: list[str] = []
    attention = False

    def __init__(self, cfg: NTMConfig, vocab_size: int, emb_dim: int = 32, blocked_ids: list[int] | None = None,
                 input_table: torch.Tensor | None = None):
        """input_table [V, F] (optional): fixed input features per token (tasks.bit_inputs),
        mapped to emb_dim by a linear layer instead of a learned embedding per token."""
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.blocked_ids = [Vocab.pad_id, Vocab.unk_id, Vocab.bos_id] if blocked_ids is None else list(blocked_ids)
        if input_table is None:
            self.input_table = None
            self.emb = nn.Embedding(vocab_size, emb_dim)
        else:
            if input_table.shape[0] != vocab_size:
                raise ValueError(f"input_table has {input_table.shape[0]} rows for a vocabulary of {vocab_size}")
            self.register_buffer("input_table", input_table.float().clone())
            self.emb = nn.Linear(input_table.shape[1], emb_dim)
        self.cell = NTMCell(cfg, emb_dim)
        self.out = nn.Linear(self.cell.output_size, vocab_size)

    def state_specs(self) -> list[StateSpec]:
        return self.cell.state_specs()

    def encode(self, condition: torch.Tensor) -> dict[str, torch.Tensor]:
        """The cell's initial state for B = len(condition) rows (the encoder-initialised ones)."""
        ones = torch.ones_like(condition, dtype=torch.float32).reshape(-1, 1, 1) + condition.reshape(-1, 1, 1) * 0
        one = self.cell.initial_state(1)
        state = {MEMORY: ones * one[MEMORY], READ_W: ones * one[READ_W], WRITE_W: ones * one[WRITE_W]}
        state[READ_VEC] = na.read(state[MEMORY], state[READ_W])
        return {f"state.{n}": state[n] for n in (MEMORY, READ_W, WRITE_W, READ_VEC)}

    def step_core(self, token, row, batch_of_row, memory, states):
        st = {name: t.index_select(0, row) for name, t in states.items()}
        x = self.emb(token) if self.input_table is None else self.emb(F.embedding(token, self.input_table))
        out, new = self.cell(x, st)
        logits = self.out(out) + (batch_of_row * 0).unsqueeze(1).to(out.dtype)  # keep the unused input
        return F.log_softmax(block(logits, self.blocked_ids), dim=-1), None, new

    def forward(self, targets: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Teacher-forced log-probs [B, T, V] of `targets` [B, T], one NTM step per token."""
        B, T = targets.shape
        states = self.initial_states(self.encode(condition))
        rows = torch.arange(B, device=targets.device)
        token = torch.full((B,), Vocab.bos_id, dtype=torch.long, device=targets.device)
        out = []
        for t in range(T):
            lp, _, new = self.step_core(token, rows, rows, {}, states)
            out.append(lp)
            states = {n: new[n] for n in states}
            token = targets[:, t]
        return torch.stack(out, 1)


__all__ = ["NTMDecoder", "CTRL_H", "CTRL_C"]
