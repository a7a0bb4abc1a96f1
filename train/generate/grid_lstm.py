"""The notes' position-aware pixel generator: a 2-D LSTM over the image grid.

A multi-dimensional LSTM (Graves et al. 2007), as used for image generation by Theis &
Bethge 2015 ("spatial LSTM"): the cell at pixel (i, j) reads its LEFT neighbour (i, j-1)
and its UPPER neighbour (i-1, j), both their tokens and their cell states, and predicts
the token of pixel (i, j).

Tokens: level q of a Q-level image is id 4 + q (V = 4 + Q); the sequence is raster order,
T = height * width tokens, no end token. The border token (a neighbour outside the
image) is <s> (id 2).

Cell at (i, j), with x = [E(left token); E(up token); cond] (cond only when conditional):
    [i, f_left, f_up, o, g] = W_x x + W_h [h_left; h_up] + b     (5H; forget biases start at 1)
    c = sigmoid(f_left) c_left + sigmoid(f_up) c_up + sigmoid(i) tanh(g)
    h = sigmoid(o) tanh(c)
    logprobs(i, j) = log_softmax(block(proj(tanh(W_out [h; cond]))))

Borders (design decision):
* top border (i == 0): h_up, c_up = the ConditionEncoder's h0, c0 (a function of the
  condition, or learned vectors when unconditional). This is how the condition / the
  learned start reaches the first row, and through it every later cell;
* left border (j == 0): h_left, c_left = zeros (the row above already carries the
  condition into column 0);
* missing neighbour tokens (i == 0 for up, j == 0 for left) are the border id 2.

Two paths run the same `input_gates` / `cell` / `output` methods:

* `forward(targets [B, T], condition [B])` (teacher forcing) sweeps the anti-diagonals
  i + j = d: every cell of diagonal d depends only on diagonal d - 1, so the H + W - 1
  diagonals are a Python loop and each is one batched matmul;
* `step_core` (the exported `decoder_step.onnx`) produces one pixel for N rows, pixels in
  raster order, with explicit states (row axis first):

      pos      int64   [N]        pixels done so far (raster index of this step's pixel)   init 0
      h, c     float32 [N, H]     cell state of the previous pixel (the left neighbour)     init 0
      row_h,   float32 [N, W, H]  latest cell state in each column: the row above for       init encoder
      row_c                       columns >= j, the current row for columns < j             (h0/c0 over W)
      row_tok  int64   [N, W]     latest token in each column (same split)                 init 2 (border)
      cond     float32 [N, C]     the condition vector, passed through (conditional only)   init encoder

  The incoming `token` is pixel pos - 1 (<s> at pos 0). Each step first writes it into
  row_tok at column (pos - 1) mod W, then reads the up token at column j = pos mod W
  (for W == 1 the write is exactly the up pixel; for W >= 2 the columns differ; at
  pos == 0 it writes the border id into column W - 1, which is what row 0 must see).
  All column reads/writes use one-hot masks (arange(W) == j) and torch.where, so the
  graph is plain ONNX ops with no data-dependent control flow.
"""

from __future__ import annotations

import torch
from torch import nn

from ...runtime.manifest import StateSpec
from ..core.step_contract import DecoderContract
from .config import ConditionEncoder, GeneratorConfig, block

BORDER = 2  # <s>: the token of a neighbour outside the image


def diagonal_order(height: int, width: int) -> list[tuple[int, int]]:
    """[(start, stop)] of each anti-diagonal d = i + j as i ranges (i ascending)."""
    return [(max(0, d - width + 1), min(d, height - 1) + 1) for d in range(height + width - 1)]


class GridGenerator(DecoderContract, nn.Module):
    """2-D (grid) LSTM pixel generator over a vocabulary of size V = 4 + Q."""

    memory_names: list[str] = []
    attention = False

    def __init__(self, cfg: GeneratorConfig, vocab_size: int):
        super().__init__()
        if cfg.unit != "pixel" or cfg.height < 1 or cfg.width < 1:
            raise ValueError("GridGenerator needs unit='pixel' with height and width >= 1")
        if cfg.layers != 1:
            raise ValueError(f"GridGenerator supports layers=1 only, got layers={cfg.layers}")
        if vocab_size <= BORDER:
            raise ValueError(f"GridGenerator: vocab_size must be > {BORDER} (the border id), got {vocab_size}")
        bad = [i for i in cfg.blocked_ids if not 0 <= i < vocab_size]
        if bad:
            raise ValueError(f"GridGenerator: blocked_ids {bad} are outside the vocabulary of size {vocab_size}")
        self.cfg = cfg
        self.vocab_size = vocab_size
        E, H = cfg.emb_dim, cfg.hidden
        C = cfg.cond_dim if cfg.conditional else 0
        self.cond_enc = ConditionEncoder(cfg, H)
        self.emb = nn.Embedding(vocab_size, E)
        self.drop = nn.Dropout(cfg.dropout)
        # Gates from plain Linear layers (the step graph stays plain ops); order [i, f_left, f_up, o, g].
        self.W_x = nn.Linear(2 * E + C, 5 * H)
        self.W_h = nn.Linear(2 * H, 5 * H, bias=False)
        with torch.no_grad():
            self.W_x.bias.zero_()
            self.W_x.bias[H : 3 * H].fill_(1.0)  # both forget gates start open
        self.W_out = nn.Linear(H + C, H)
        self.proj = nn.Linear(H, vocab_size)

    # --- the bundle contract -------------------------------------------------------------------

    def state_specs(self) -> list[StateSpec]:
        H, W = self.cfg.hidden, self.cfg.width
        specs = [
            StateSpec("pos", ["N"], "int64", 0),
            StateSpec("h", ["N", H], "float32", 0.0),
            StateSpec("c", ["N", H], "float32", 0.0),
            StateSpec("row_h", ["N", W, H], "float32", "encoder"),
            StateSpec("row_c", ["N", W, H], "float32", "encoder"),
            StateSpec("row_tok", ["N", W], "int64", BORDER),
        ]
        if self.cfg.conditional:
            specs.append(StateSpec("cond", ["N", self.cfg.cond_dim], "float32", "encoder"))
        return specs

    def encode(self, condition: torch.Tensor) -> dict[str, torch.Tensor]:
        """condition int64 [B] -> the encoder-initialised states by `state.<name>`."""
        e, h0, c0 = self.cond_enc(condition)
        W = self.cfg.width
        out = {"state.row_h": h0.unsqueeze(1).expand(-1, W, -1).contiguous(),
               "state.row_c": c0.unsqueeze(1).expand(-1, W, -1).contiguous()}
        if self.cfg.conditional:
            out["state.cond"] = e
        return out

    # --- the cell (shared by training and the step) ----------------------------------------------

    def input_gates(self, left_tok: torch.Tensor, up_tok: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Token ids [...] (and cond [..., C]) -> W_x [E(left); E(up); cond] + b, [..., 5H]."""
        parts = [self.drop(self.emb(left_tok)), self.drop(self.emb(up_tok))]
        if cond is not None:
            parts.append(cond)
        return self.W_x(torch.cat(parts, dim=-1))

    def cell(self, xg: torch.Tensor, h_left: torch.Tensor, c_left: torch.Tensor, h_up: torch.Tensor,
             c_up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One grid-LSTM cell for any leading shape: (h, c) [..., H]."""
        H = self.cfg.hidden
        gates = xg + self.W_h(torch.cat([h_left, h_up], dim=-1))
        i, f_left, f_up, o = torch.sigmoid(gates[..., : 4 * H]).chunk(4, dim=-1)
        g = torch.tanh(gates[..., 4 * H :])
        c = f_left * c_left + f_up * c_up + i * g
        h = o * torch.tanh(c)
        return h, c

    def output(self, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """h [..., H] (and cond [..., C]) -> log-probs [..., V], blocked ids at -inf."""
        feats = h if cond is None else torch.cat([h, cond], dim=-1)
        out = self.drop(torch.tanh(self.W_out(feats)))
        return torch.log_softmax(block(self.proj(out), self.cfg.blocked_ids), dim=-1)

    # --- decoder step ----------------------------------------------------------------------------

    def step_core(self, token: torch.Tensor, row: torch.Tensor, batch_of_row: torch.Tensor,
                  memory: dict[str, torch.Tensor], states: dict[str, torch.Tensor]):
        """One pixel for N rows; returns (logprobs [N, V], None, new states by name)."""
        W = self.cfg.width
        # batch_of_row carries nothing here (no memory), but the contract lists it as a graph
        # input: "+ 0 * batch_of_row" keeps it in the exported graph, as ConditionEncoder does.
        pos = states["pos"].index_select(0, row) + batch_of_row * 0
        h = states["h"].index_select(0, row)
        c = states["c"].index_select(0, row)
        row_h = states["row_h"].index_select(0, row)
        row_c = states["row_c"].index_select(0, row)
        row_tok = states["row_tok"].index_select(0, row)
        cond = states["cond"].index_select(0, row) if self.cfg.conditional else None

        cols = torch.arange(W, dtype=pos.dtype, device=pos.device).unsqueeze(0)  # [1, W]
        j = pos % W  # pos >= 0
        # The incoming token is pixel pos - 1: it becomes the latest token of its column.
        prev_col = (pos + (W - 1)) % W
        row_tok = torch.where(cols == prev_col.unsqueeze(1), token.unsqueeze(1), row_tok)
        at_j = cols == j.unsqueeze(1)  # [N, W]
        up_tok = torch.where(at_j, row_tok, torch.zeros_like(row_tok)).sum(1)
        has_left = j > 0  # [N]
        left_tok = torch.where(has_left, token, torch.full_like(token, BORDER))
        left = has_left.unsqueeze(1)
        h_left = torch.where(left, h, torch.zeros_like(h))
        c_left = torch.where(left, c, torch.zeros_like(c))
        at_j3 = at_j.unsqueeze(2)  # [N, W, 1]
        h_up = torch.where(at_j3, row_h, torch.zeros_like(row_h)).sum(1)
        c_up = torch.where(at_j3, row_c, torch.zeros_like(row_c)).sum(1)

        h_new, c_new = self.cell(self.input_gates(left_tok, up_tok, cond), h_left, c_left, h_up, c_up)
        new = {
            "pos": pos + 1,
            "h": h_new,
            "c": c_new,
            "row_h": torch.where(at_j3, h_new.unsqueeze(1), row_h),
            "row_c": torch.where(at_j3, c_new.unsqueeze(1), row_c),
            "row_tok": row_tok,
        }
        if cond is not None:
            new["cond"] = cond
        return self.output(h_new, cond), None, new

    # --- training ------------------------------------------------------------------------------

    def forward(self, targets: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: targets int64 [B, T] (raster order), condition int64 [B] -> log-probs [B, T, V].

        logprobs[:, t] is the distribution of pixel t given the pixels before it (its left
        and upper neighbours through the grid recurrence).
        """
        Hh, W, Hd = self.cfg.height, self.cfg.width, self.cfg.hidden
        B, T = targets.shape
        if T != Hh * W:
            raise ValueError(f"GridGenerator.forward: targets have {T} tokens, the image needs {Hh}x{W}={Hh * W}")
        cond, h0, c0 = self.cond_enc(condition)
        img = targets.view(B, Hh, W)
        up_tok = torch.cat([torch.full_like(img[:, :1, :], BORDER), img[:, :-1, :]], dim=1)  # [B, Hh, W]
        left_tok = torch.cat([torch.full_like(img[:, :, :1], BORDER), img[:, :, :-1]], dim=2)
        cond_grid = None if cond is None else cond[:, None, None, :].expand(-1, Hh, W, -1)
        xg = self.input_gates(left_tok, up_tok, cond_grid).reshape(B, T, 5 * Hd)  # raster order

        diags = diagonal_order(Hh, W)
        order = [i * W + (d - i) for d, (a, b) in enumerate(diags) for i in range(a, b)]
        order_t = torch.tensor(order, dtype=torch.long, device=targets.device)
        # diagonal order, then one piece per diagonal (split, not slicing: the backward of a
        # slice allocates the whole [B, T, 5H] gradient each time)
        xg_diags = xg.index_select(1, order_t).split([b - a for a, b in diags], dim=1)
        zeros = h0.new_zeros(B, 1, Hd)
        top_h, top_c = h0.unsqueeze(1), c0.unsqueeze(1)

        hs: list[torch.Tensor] = []
        prev_h = prev_c = None
        prev_a = 0
        for d, (a, b) in enumerate(diags):
            if d == 0:
                h_left, c_left, h_up, c_up = zeros, zeros, top_h, top_c
            else:
                # left of (i, d-i) is (i, d-1-i) on diagonal d-1 (absent when i == d)
                h_left, c_left = prev_h[:, a - prev_a:], prev_c[:, a - prev_a:]
                if b - 1 == d:
                    h_left, c_left = torch.cat([h_left, zeros], 1), torch.cat([c_left, zeros], 1)
                # up of (i, d-i) is (i-1, d-i) on diagonal d-1 (absent when i == 0)
                if a == 0:
                    h_up = torch.cat([top_h, prev_h[:, : b - 1 - prev_a]], 1)
                    c_up = torch.cat([top_c, prev_c[:, : b - 1 - prev_a]], 1)
                else:
                    h_up, c_up = prev_h[:, a - 1 - prev_a : b - 1 - prev_a], prev_c[:, a - 1 - prev_a : b - 1 - prev_a]
            h_d, c_d = self.cell(xg_diags[d], h_left, c_left, h_up, c_up)
            hs.append(h_d)
            prev_h, prev_c, prev_a = h_d, c_d, a

        h_diag = torch.cat(hs, dim=1)  # [B, T, Hd] in diagonal order
        inverse = torch.empty_like(order_t)
        inverse[order_t] = torch.arange(T, device=targets.device)
        h_all = h_diag.index_select(1, inverse)  # raster order
        cond_seq = None if cond is None else cond.unsqueeze(1).expand(-1, T, -1)
        return self.output(h_all, cond_seq)

    def loss(self, targets: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Mean pixel NLL over the batch, and the pixel count."""
        lp = self(targets, condition)
        nll = nn.functional.nll_loss(lp.reshape(-1, lp.size(2)), targets.reshape(-1), reduction="sum")
        n = targets.numel()
        return nll / max(n, 1), n
