"""The machine-translation model of the notes: a bidirectional LSTM encoder and an LSTM
decoder that attends over the encoder's outputs with a designable match function.

Two methods are the whole interface, and they are exactly the two exported graphs:

* `encode(src, src_lengths)` -> the encoder outputs the manifest names
  (memory [B, L, D], memory_key [B, L, A], memory_mask [B, L], state.h [B, H]);
* `step(token, row, batch_of_row, topk, *memory, *states)` -> one decoder step for N rows
  (logprobs, topk_logprobs, topk_ids, attention, state.h.next, state.c.next).

Training (teacher forcing) runs the very same step code over the target positions with
row = batch_of_row = arange(B), so the exported step graph is the trained computation.

Decoder step (notes: "attention-based model"), with z the decoder state before the step:
    alpha   = masked_softmax(match(z, memory_key))        the attention reported at this step
    context = sum_i alpha_i * memory_i
    z', c'  = LSTM([embedding(previous token); context], (z, c))
    logits  = V tanh(W [z'; context])
The initial z0 is a learned vector, or (init_state="encoder", Bahdanau et al. 2015, appendix A.2.2)
tanh(W [forward LSTM at the last token; backward LSTM at the first]), so the first query already
knows the sentence. With attention="none" the decoder starts from the
encoder's final states and reads that final vector (memory [B, 1, D]) at every step.

With input_feed="distribution" (the notes' "better idea?", train/methods/exposure.py) the embedding
of the previous token is replaced by sum_v p_prev(v) E[v]: the step carries the previous
softmax as `state.prev_dist` [N, V] (one-hot <s> from the encoder) and ignores `token`.
Training unrolls through `exposure.unroll`, which also does scheduled sampling.
"""

from __future__ import annotations

import torch
from torch import nn

from ...runtime.manifest import StateSpec
from ...runtime.text import Vocab
from ..core.attention import make_match, masked_softmax
from ..core.sequences import gather_time, reverse_index
from ..core.step_contract import DecoderContract, StepGraph, topk  # noqa: F401  (re-exported)
from ..methods.exposure import FeedConfig, expected_embedding, keep_token_input, start_distribution, unroll
from .config import ModelConfig


class Translator(DecoderContract, nn.Module):
    """Attention encoder-decoder over one shared vocabulary of size V."""

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self._build_encoder(cfg, vocab_size)
        E, H, D = cfg.emb_dim, cfg.dec_hidden, cfg.memory_dim
        self.attention = cfg.attention != "none"
        if self.attention:
            self.match = make_match(cfg.attention, D, H, cfg.att_dim)
            if cfg.init_state == "encoder":
                self.init_h = nn.Linear(D, H)
            else:
                self.z0 = nn.Parameter(torch.randn(H) * 0.1)
        else:
            self.init_h = nn.Linear(D, H)
        # Decoder LSTM cell from plain Linear layers (the step graph stays plain ops).
        self.feeds_attention = cfg.feed_attention  # Luong input feeding: state.att_feed
        self.W_x = nn.Linear(E + D + (H if self.feeds_attention else 0), 4 * H)
        self.W_h = nn.Linear(H, 4 * H, bias=False)
        with torch.no_grad():
            self.W_x.bias.zero_()
            self.W_x.bias[H : 2 * H].fill_(1.0)  # forget gate starts open
        self.W_out = nn.Linear(H + D, H)
        self.proj = nn.Linear(H, vocab_size)

    # --- the bundle contract -------------------------------------------------------------

    @property
    def memory_names(self) -> list[str]:
        return ["memory", "memory_key", "memory_mask"] if self.attention else ["memory"]

    def state_specs(self) -> list[StateSpec]:
        H = self.cfg.dec_hidden
        fed = ([StateSpec("att_feed", ["N", H], "float32", 0.0, title="attentional vector fed back")]
               if self.feeds_attention else [])
        return [StateSpec("h", ["N", H], "float32", "encoder"), StateSpec("c", ["N", H], "float32", 0.0),
                *fed, *self.feed_specs()]

    # --- what the step reads: the previous token, or the previous distribution -------------

    @property
    def fed_distribution(self) -> bool:
        return self.cfg.input_feed == "distribution"

    def feed_specs(self) -> list[StateSpec]:
        """`state.prev_dist` [N, V] when the model is fed distributions (else nothing)."""
        return [StateSpec("prev_dist", ["N", self.vocab_size])] if self.fed_distribution else []

    def feed_init(self, out: dict[str, torch.Tensor], src_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Adds the first prev_dist (one-hot <s>) to the encoder outputs `out`."""
        if self.fed_distribution:
            column = src_lengths.unsqueeze(1).to(torch.float32)
            out["state.prev_dist"] = start_distribution(column, self.vocab_size, Vocab.bos_id)
        return out

    def input_embedding(self, token: torch.Tensor, states: dict[str, torch.Tensor], row: torch.Tensor) -> torch.Tensor:
        """E[token], or the expected embedding under the previous softmax (rows gathered by `row`)."""
        if self.fed_distribution:
            return expected_embedding(states["prev_dist"].index_select(0, row), self.tgt_emb.weight)
        return self.tgt_emb(token)

    def feed_outputs(self, logprobs: torch.Tensor, token: torch.Tensor, new: dict[str, torch.Tensor]) -> torch.Tensor:
        """Distribution-fed: new prev_dist = exp(logprobs), and `token` kept in the graph."""
        if self.fed_distribution:
            logprobs = keep_token_input(logprobs, token)
            new["prev_dist"] = logprobs.exp()
        return logprobs

    # --- encoder ---------------------------------------------------------------------------

    def _build_encoder(self, cfg: ModelConfig, vocab_size: int) -> None:
        """The embeddings and the bidirectional encoder (shared by every decoder kind)."""
        self.cfg = cfg
        self.vocab_size = vocab_size
        E, He = cfg.emb_dim, cfg.enc_hidden
        self.src_emb = nn.Embedding(vocab_size, E, padding_idx=0)
        self.tgt_emb = nn.Embedding(vocab_size, E, padding_idx=0)
        # Two forward LSTMs instead of bidirectional=True + packing: the backward one reads
        # each item reversed within its own length (exports with dynamic B and T).
        self.enc_fwd = nn.LSTM(E, He, batch_first=True)
        self.enc_bwd = nn.LSTM(E, He, batch_first=True)
        self.drop = nn.Dropout(cfg.dropout)

    def run_encoder(self, src: torch.Tensor, src_lengths: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(forward outputs [B, S, He], backward outputs [B, S, He], mask [B, S]) of the source."""
        S = src.size(1)
        emb = self.drop(self.src_emb(src))
        fwd, _ = self.enc_fwd(emb)
        idx = reverse_index(src_lengths, S)
        bwd_rev, _ = self.enc_bwd(gather_time(emb, idx))
        bwd = gather_time(bwd_rev, idx)
        mask = torch.arange(S, device=src.device).unsqueeze(0) < src_lengths.unsqueeze(1)
        return fwd, bwd, mask

    def final_states(self, fwd: torch.Tensor, bwd: torch.Tensor, src_lengths: torch.Tensor) -> torch.Tensor:
        """[B, 1, D]: the forward LSTM after the last real token and the backward one after the
        whole item (it ends at t=0)."""
        last = (src_lengths - 1).view(-1, 1, 1).expand(-1, 1, fwd.size(2))
        return torch.cat([torch.gather(fwd, 1, last), bwd[:, :1]], dim=2)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """src int64 [B, S] (padded with 0), src_lengths int64 [B] -> encoder outputs by name."""
        fwd, bwd, mask = self.run_encoder(src, src_lengths)
        out: dict[str, torch.Tensor] = {}
        if self.attention:
            memory = torch.cat([fwd, bwd], dim=2) * mask.unsqueeze(2).to(fwd.dtype)
            out["memory"] = memory
            out["memory_key"] = self.match.key(memory)
            out["memory_mask"] = mask
            if self.cfg.init_state == "encoder":
                out["state.h"] = torch.tanh(self.init_h(self.final_states(fwd, bwd, src_lengths)[:, 0]))
            else:
                out["state.h"] = self.z0.unsqueeze(0).expand(src.size(0), -1)  # [B, H]: z0 for every item
        else:
            memory = self.final_states(fwd, bwd, src_lengths)  # [B, 1, D]
            out["memory"] = memory
            out["state.h"] = torch.tanh(self.init_h(memory[:, 0]))
        return self.feed_init(out, src_lengths)

    # --- decoder step --------------------------------------------------------------------------

    def step_core(self, token: torch.Tensor, row: torch.Tensor, batch_of_row: torch.Tensor,
                  memory: dict[str, torch.Tensor], states: dict[str, torch.Tensor]):
        """One step; returns (logprobs [N, V], attention [N, L] or None, new states by name)."""
        h = states["h"].index_select(0, row)
        c = states["c"].index_select(0, row)
        mem = memory["memory"].index_select(0, batch_of_row)
        if self.attention:
            key = memory["memory_key"].index_select(0, batch_of_row)
            mask = memory["memory_mask"].index_select(0, batch_of_row)
            alpha = masked_softmax(self.match.score(h, key), mask)
            context = torch.bmm(alpha.unsqueeze(1), mem).squeeze(1)
        else:
            alpha = None
            context = mem[:, 0]
        parts = [self.drop(self.input_embedding(token, states, row)), context]
        if self.feeds_attention:
            parts.append(states["att_feed"].index_select(0, row))
        x = torch.cat(parts, dim=1)
        gates = self.W_x(x) + self.W_h(h)
        i, f, g, o = gates.chunk(4, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        out = self.drop(torch.tanh(self.W_out(torch.cat([h_new, context], dim=1))))
        logprobs = torch.log_softmax(self.proj(out), dim=1)
        new = {"h": h_new, "c": c_new}
        if self.feeds_attention:
            new["att_feed"] = out
        return self.feed_outputs(logprobs, token, new), alpha, new

    # --- training ----------------------------------------------------------------------------

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
                feed: FeedConfig | None = None, step: int = 0):
        """Log-probs [B, T, V] and attention [B, T, L] (or None) of tgt_in: teacher forcing, or
        scheduled sampling at optimizer step `step` when `feed` says so (exposure.unroll)."""
        enc = self.encode(src, src_lengths)
        memory = {n: enc[n] for n in self.memory_names}
        rows = torch.arange(src.size(0), device=src.device)

        def step_fn(token, states):
            return self.step_core(token, rows, rows, memory, states)

        return unroll(step_fn, tgt_in, self.initial_states(enc), feed, step)

    def loss(self, src, src_lengths, tgt_in, tgt_out, feed: FeedConfig | None = None,
             step: int = 0, label_smoothing: float = 0.0) -> tuple[torch.Tensor, int]:
        """Mean token NLL over non-pad target positions, and the token count; with label_smoothing
        eps > 0 the target is (1 - eps) on the reference and eps spread uniformly (Szegedy et al. 2016,
        section 7), what the optimizer sees while training (validation keeps eps = 0)."""
        lp, _ = self(src, src_lengths, tgt_in, feed, step)
        flat, gold = lp.reshape(-1, lp.size(2)), tgt_out.reshape(-1)
        nll = nn.functional.nll_loss(flat, gold, ignore_index=0, reduction="sum")
        if label_smoothing:
            keep = (gold != 0).to(flat.dtype)
            uniform = -(flat.mean(dim=1) * keep).sum()
            nll = (1.0 - label_smoothing) * nll + label_smoothing * uniform
        n = int((tgt_out != 0).sum())
        return nll / max(n, 1), n


