"""The notes' RNN generator: an LSTM that emits one token (character, word or pixel) at a time.

Exported as the two graphs of every bundle (train/generate/config.py):

* `encode(condition [B])` -> the initial states (h, c: [B, layers, H]; cond [B, C] for a
  conditional model, fed at every step; prev_dist [B, V] = one-hot <s> when the model
  is fed distributions);
* `step(...)` -> one token for N rows (`DecoderContract`), no memory, no attention.

Step, with (h, c) the stacked LSTM state before it:
    x       = E[token]                      input_mode "token" (teacher forcing)
            = sum_v p_prev(v) E[v]          input_mode "distribution" (the notes' "better idea?")
    h', c'  = LSTM_layers([x; cond], (h, c))
    p(y)    = softmax(W h' + b), blocked ids excluded

Training with tokens runs `nn.LSTM` over the whole sequence (fast); the step uses the
same weights written out as plain matmuls (`_cell`), so the exported step is the trained
computation (tests/train/test_generator_model.py checks it token by token). Training with
distributions has to unroll step by step: each input is the previous output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...runtime.manifest import StateSpec
from ...runtime.text import Vocab
from ..core.step_contract import DecoderContract
from .config import ConditionEncoder, GeneratorConfig, block


class RasterGenerator(DecoderContract, nn.Module):
    """LSTM language model over tokens; images are read as their pixels in raster order."""

    memory_names: list[str] = []
    attention = False

    def __init__(self, cfg: GeneratorConfig, vocab_size: int):
        super().__init__()
        if cfg.arch != "lstm":
            raise ValueError(f"RasterGenerator is the 'lstm' architecture, got arch={cfg.arch!r}")
        self.cfg = cfg
        self.vocab_size = vocab_size
        E, H, C = cfg.emb_dim, cfg.hidden, cfg.cond_dim
        self.emb = nn.Embedding(vocab_size, E)
        self.start = ConditionEncoder(cfg, cfg.layers * H)
        in_dim = E + (C if cfg.conditional else 0)
        self.lstm = nn.LSTM(in_dim, H, num_layers=cfg.layers, batch_first=True,
                            dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        with torch.no_grad():
            for k in range(cfg.layers):
                getattr(self.lstm, f"bias_ih_l{k}")[H : 2 * H].fill_(1.0)  # forget gate starts open
                getattr(self.lstm, f"bias_hh_l{k}")[H : 2 * H].zero_()
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(H, vocab_size)
        self.decode_blocked = sorted(set(cfg.blocked_ids) | ({Vocab.unk_id} if cfg.unit != "pixel" else set()))

    # --- the bundle contract ---------------------------------------------------------

    def state_specs(self) -> list[StateSpec]:
        L, H = self.cfg.layers, self.cfg.hidden
        specs = [StateSpec("h", ["N", L, H]), StateSpec("c", ["N", L, H])]
        if self.cfg.conditional:
            specs.append(StateSpec("cond", ["N", self.cfg.cond_dim]))
        if self.cfg.input_mode == "distribution":
            specs.append(StateSpec("prev_dist", ["N", self.vocab_size]))
        return specs

    def encode(self, condition: torch.Tensor) -> dict[str, torch.Tensor]:
        """condition int64 [B] (ignored but for B when unconditional) -> initial states."""
        cond, h0, c0 = self.start(condition)
        B, L, H = condition.shape[0], self.cfg.layers, self.cfg.hidden
        out = {"state.h": h0.reshape(B, L, H), "state.c": c0.reshape(B, L, H)}
        if cond is not None:
            out["state.cond"] = cond
        if self.cfg.input_mode == "distribution":
            out["state.prev_dist"] = F.one_hot(condition * 0 + Vocab.bos_id, self.vocab_size).float()
        return out

    def _cell(self, k: int, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer k of nn.LSTM as plain ops (gate order i, f, g, o)."""
        gates = (x @ getattr(self.lstm, f"weight_ih_l{k}").t() + getattr(self.lstm, f"bias_ih_l{k}")
                 + h @ getattr(self.lstm, f"weight_hh_l{k}").t() + getattr(self.lstm, f"bias_hh_l{k}"))
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def _logprobs(self, h: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(block(self.out(self.drop(h)), self.cfg.blocked_ids), dim=-1)

    def _one_step(self, x: torch.Tensor, cond: torch.Tensor | None, h: torch.Tensor, c: torch.Tensor):
        """[x; cond] through the stacked cells; h, c [N, layers, H]."""
        if cond is not None:
            x = torch.cat([x, cond], dim=-1)
        hs, cs = [], []
        for k in range(self.cfg.layers):
            hk, ck = self._cell(k, x, h[:, k], c[:, k])
            hs.append(hk)
            cs.append(ck)
            x = self.drop(hk) if k + 1 < self.cfg.layers else hk
        return self._logprobs(hs[-1]), torch.stack(hs, 1), torch.stack(cs, 1)

    def step_core(self, token, row, batch_of_row, memory, states):
        h = states["h"].index_select(0, row)
        c = states["c"].index_select(0, row)
        cond = states["cond"].index_select(0, row) if self.cfg.conditional else None
        if self.cfg.input_mode == "distribution":
            prev = states["prev_dist"].index_select(0, row)
            x = prev @ self.emb.weight
        else:
            x = self.emb(token)
        logprobs, h, c = self._one_step(x, cond, h, c)
        # A generator never reads batch_of_row (no memory), nor the token when fed
        # distributions; an input no op reads is dropped by the exporter, so keep them in.
        logprobs = logprobs + (batch_of_row * 0 + token * 0).unsqueeze(1).to(logprobs.dtype)
        new = {"h": h, "c": c}
        if cond is not None:
            new["cond"] = cond
        if self.cfg.input_mode == "distribution":
            new["prev_dist"] = logprobs.exp()
        return logprobs, None, new

    def decode_logprobs(self, logprobs: torch.Tensor, token: torch.Tensor | None = None) -> torch.Tensor:
        """Decoding never emits <unk> for text ("the <unk> of the <unk>" helps nobody)."""
        extra = [i for i in self.decode_blocked if i not in self.cfg.blocked_ids]
        if not extra:
            return logprobs
        return F.log_softmax(block(logprobs, extra), dim=-1)

    # --- training ----------------------------------------------------------------------

    def forward(self, targets: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Teacher-forced (or distribution-fed) log-probs [B, T, V] of `targets` [B, T]."""
        enc = self.encode(condition)
        h0, c0 = enc["state.h"], enc["state.c"]
        cond = enc.get("state.cond")
        B, T = targets.shape
        if self.cfg.input_mode == "distribution":
            prev = enc["state.prev_dist"]
            h, c, out = h0, c0, []
            for _ in range(T):
                lp, h, c = self._one_step(prev @ self.emb.weight, cond, h, c)
                out.append(lp)
                prev = lp.exp()
            return torch.stack(out, 1)
        inputs = torch.cat([torch.full((B, 1), Vocab.bos_id, dtype=targets.dtype, device=targets.device),
                            targets[:, :-1]], dim=1)
        x = self.emb(inputs)
        if cond is not None:
            x = torch.cat([x, cond.unsqueeze(1).expand(B, T, cond.size(-1))], dim=-1)
        hs, _ = self.lstm(x, (h0.transpose(0, 1).contiguous(), c0.transpose(0, 1).contiguous()))
        return self._logprobs(hs)


def sequence_nll(logprobs: torch.Tensor, targets: torch.Tensor, pad_id: int = Vocab.pad_id) -> tuple[torch.Tensor, int]:
    """(summed NLL in nats over non-pad targets, number of those targets)."""
    mask = targets != pad_id
    picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -torch.where(mask, picked, torch.zeros_like(picked)).sum(), int(mask.sum())


def make_generator(cfg: GeneratorConfig, vocab_size: int) -> nn.Module:
    """The model class for cfg.arch ("lstm" or "grid")."""
    if cfg.arch == "grid":
        from .grid_lstm import GridGenerator

        return GridGenerator(cfg, vocab_size)
    return RasterGenerator(cfg, vocab_size)
