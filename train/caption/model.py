"""Show, Attend and Tell (Xu et al. 2015): an LSTM that attends over image regions.

The exported graphs are exactly two methods, as for the translator:

* `encode(pixels)` -> memory [B, 49, R] (projected region vectors a_i),
  memory_key [B, 49, A] (their attention keys), state.h / state.c [B, H]
  (h0, c0 = tanh(f_init(mean_i a_i)), the paper's initialisation);
* `step(...)` -> one word for N rows (`DecoderContract`).

Decoder step, with h the LSTM state before the step (the notes' image-caption slides):
    alpha   = softmax_i(v . tanh(W_a a_i + W_h h))          soft attention over the 49 regions
    beta    = sigmoid(f_beta(h))                            gating scalar
    z       = beta * sum_i alpha_i a_i                      the context
    h', c'  = LSTM([E y_prev; z], (h, c))
    p(y)    = softmax(L_o tanh(E y_prev + L_h h' + L_z z))  deep output layer
With attention="none" (the notes' first caption slide) the mean region vector is the
only memory and is fed, ungated, at every step.

Label slots and copying (cfg.labels = K > 0; novel-object captioning as in Hendricks et al. 2016
and Lu et al. 2018, with the pointer-generator of See et al. 2017). The CNN's own ImageNet
classifier runs on the mean region vector; its 1000 class probabilities are summed per plain
name (label_names.py: every dog breed is "dog"), and the K most probable names become K slots
    s_k     = tanh(W_s [E name_k; p_k; log p_k])            a word the image probably shows
appended to the regions, so alpha attends over 49 + K positions and the context z can carry
"cat" as well as the cat's pixels. After the LSTM a pointer over the slots and a gate decide
whether to copy a slot's name:
    ptr     = softmax_k(K_k . Q h' / sqrt(A))               which label
    g       = sigmoid(w_g [h'; z; E y_prev])                generate (g) or copy (1 - g)
    p(y)    = g softmax(L_o ...)(y) + (1 - g) sum_k ptr_k [name_k = y]
With cfg.copy_names the softmax skips the slots' names (their logits are masked), so a name the
labels carry can only be copied: clip art then teaches the gate when to copy a label, which is
what a photo of something clip art never shows needs.
Every name is a vocabulary word, so the copy is one more term of the same distribution and
training needs no copy labels: a caption word that is one of the slots' names is learned either
way, and the gate learns when copying is the cheaper explanation. The step's attention output is
alpha over the 49 regions followed by (1 - g) ptr_k, each label's copy probability for the word
(what the attention picture's label bars show), not alpha's own small mass on the slots.

Training on cached features: `forward_regions(regions, tgt_in)` starts after the CNN,
so a frozen CNN runs once per image (train/caption/features.py), not once per epoch. It
unrolls through `exposure.unroll` (teacher forcing or scheduled sampling). With
input_feed="distribution" E y_prev is the expected embedding sum_v p_prev(v) E[v], the
previous softmax carried as `state.prev_dist` (one-hot <s> from the encoder), as in the
translator (train/translate/model.py).
"""

from __future__ import annotations

import torch
from torch import nn

import math

from ...runtime import manifest as mf
from ...runtime.manifest import StateSpec
from ...runtime.text import Vocab
from ..core.attention import make_match
from ..core.step_contract import DecoderContract
from ..methods.exposure import FeedConfig, expected_embedding, keep_token_input, start_distribution, unroll
from .caption_text import NO_END_WORDS
from .config import CaptionModelConfig
from .image_encoder import FEATURE_DIM, REGIONS, RegionEncoder, freeze, imagenet_classifier
from .label_names import load_label_names

UNK_ID = Vocab.unk_id


class CaptionModel(DecoderContract, nn.Module):
    """CNN regions -> attention LSTM decoder over a vocabulary of size V."""

    def __init__(self, cfg: CaptionModelConfig, vocab_size: int, pretrained: bool = True,
                 tokens: list[str] | None = None):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        if (cfg.labels or cfg.no_end_words) and (tokens is None or len(tokens) != vocab_size):
            raise ValueError("label slots and no_end_words need the vocabulary: pass tokens= (vocab.tokens)")
        E, H, R = cfg.emb_dim, cfg.dec_hidden, cfg.region_dim
        self.cnn = RegionEncoder(pretrained=pretrained)
        if not cfg.finetune_cnn:
            freeze(self.cnn)
        self.region_proj = nn.Linear(FEATURE_DIM, R)
        self.attention = cfg.attention == "soft"
        if self.attention:
            self.match = make_match("additive", R, H, cfg.att_dim)
            self.f_beta = nn.Linear(H, 1)
        self.init_h = nn.Linear(R, H)
        self.init_c = nn.Linear(R, H)
        self.emb = nn.Embedding(vocab_size, E, padding_idx=0)
        self.W_x = nn.Linear(E + R, 4 * H)
        self.W_h = nn.Linear(H, 4 * H, bias=False)
        with torch.no_grad():
            self.W_x.bias.zero_()
            self.W_x.bias[H : 2 * H].fill_(1.0)  # forget gate starts open
        self.L_h = nn.Linear(H, E)
        self.L_z = nn.Linear(R, E, bias=False)
        self.L_o = nn.Linear(E, vocab_size)
        self.drop = nn.Dropout(cfg.dropout)
        self.label_slots = cfg.labels
        if cfg.labels:
            self._build_label_slots(tokens, pretrained)
        if cfg.no_end_words:
            no_end = torch.zeros(vocab_size, dtype=torch.bool)
            for i, t in enumerate(tokens):
                no_end[i] = t in NO_END_WORDS
            no_end[Vocab.bos_id] = True  # nor as the first word: no empty caption
            # the rule is the code's, not the checkpoint's: a re-export applies today's NO_END_WORDS
            self.register_buffer("no_end", no_end, persistent=False)
            self._register_load_state_dict_pre_hook(_drop_saved_no_end)
        tau = torch.tensor(float(cfg.tau_init if cfg.tau == "learned" else 1.0))
        if cfg.tau == "learned":
            self.tau = nn.Parameter(tau)
        else:
            self.register_buffer("tau", tau)

    def _build_label_slots(self, tokens: list[str], pretrained: bool) -> None:
        """The frozen ImageNet head, the class -> plain-name sum, each name's vocabulary id, and the
        slot, pointer and gate layers."""
        E, H, R, A = self.cfg.emb_dim, self.cfg.dec_hidden, self.cfg.region_dim, self.cfg.att_dim
        self.classifier = imagenet_classifier(pretrained)
        freeze(self.classifier)
        names = load_label_names()
        distinct = sorted(set(names))
        col = {n: j for j, n in enumerate(distinct)}
        class_to_name = torch.zeros(len(names), len(distinct))
        for c, n in enumerate(names):
            class_to_name[c, col[n]] = 1.0
        index = {t: i for i, t in enumerate(tokens)}
        missing = [n for n in distinct if n not in index]
        if missing:
            raise ValueError(f"{len(missing)} label names are not vocabulary words (e.g. {missing[:3]}): build the "
                             "vocabulary with the label names (train/caption/loop.py does when labels > 0)")
        self.register_buffer("class_to_name", class_to_name)
        self.register_buffer("name_token", torch.tensor([index[n] for n in distinct], dtype=torch.long))
        is_name = torch.zeros(self.vocab_size, dtype=torch.bool)
        is_name[self.name_token] = True
        self.register_buffer("is_name", is_name, persistent=False)
        self.register_buffer("vocab_ids", torch.arange(self.vocab_size), persistent=False)
        self.slot_in = nn.Linear(E + 2, R)
        self.ptr_key = nn.Linear(R, A, bias=False)
        self.ptr_query = nn.Linear(H, A)
        self.copy_gate = nn.Linear(H + R + E, 1)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.cfg.finetune_cnn:
            self.cnn.eval()  # frozen: batch-norm statistics stay ImageNet's
        return self

    # --- the bundle contract -------------------------------------------------------------

    @property
    def memory_names(self) -> list[str]:
        if self.label_slots:
            prior = ["label_prior"] if self.cfg.pointer_prior else []
            return ["memory", "memory_key", "label_tokens", "label_key", *prior]
        return ["memory", "memory_key"] if self.attention else ["memory"]

    def state_specs(self) -> list[StateSpec]:
        H = self.cfg.dec_hidden
        specs = [StateSpec("h", ["N", H], "float32", "encoder"), StateSpec("c", ["N", H], "float32", "encoder")]
        if self.fed_distribution:
            specs.append(StateSpec("prev_dist", ["N", self.vocab_size]))
        return specs

    @property
    def fed_distribution(self) -> bool:
        return self.cfg.input_feed == "distribution"

    # --- encoder ---------------------------------------------------------------------------

    def regions(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, 224, 224] (runtime.image.preprocess) -> CNN regions [B, 49, 1280]."""
        return self.cnn(pixels)

    def top_labels(self, regions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The K most probable plain names of each image: (vocabulary ids [B, K], probabilities [B, K]).

        The classifier is EfficientNet's own head on its average-pooled features (the mean of the
        49 regions); class probabilities are summed per name before the top K is taken."""
        probs = torch.softmax(self.classifier(regions.mean(dim=1)), dim=1)
        p, idx = torch.topk(probs @ self.class_to_name, self.label_slots, dim=1)
        return self.name_token[idx], p

    def inject_labels(self, tok: torch.Tensor, p: torch.Tensor, tgt_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: with probability label_inject per image, a label name its caption uses but its
        top K lacks is inserted at a random rank (the slots below move down one, the last drops
        out), with a probability between its neighbours' (the slots stay sorted, as at inference),
        so the pointer is trained on images whose classifier missed (clip art mostly) and learns no
        preference for one slot."""
        tok, p = tok.clone(), p.clone()
        K = tok.size(1)
        for b in range(tok.size(0)):
            if float(torch.rand(())) >= self.cfg.label_inject:
                continue
            words = [int(w) for w in tgt_out[b] if int(w) > Vocab.eos_id and bool(self.is_name[int(w)])]
            absent = [w for w in words if w not in set(tok[b].tolist())]
            if not absent:
                continue
            k = int(torch.randint(K, ()))
            hi = float(p[b, k - 1]) if k else 1.0
            lo = float(p[b, k])
            tok[b, k + 1:] = tok[b, k:K - 1].clone()
            p[b, k + 1:] = p[b, k:K - 1].clone()
            tok[b, k] = absent[0]
            p[b, k] = lo + (hi - lo) * float(torch.rand(()))
        return tok, p

    def encode_regions(self, regions: torch.Tensor, tgt_out: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """CNN regions [B, 49, 1280] -> encoder outputs by name (tgt_out: training targets, for
        `inject_labels`)."""
        a = self.region_proj(regions)  # [B, 49, R]
        mean = a.mean(dim=1)
        out: dict[str, torch.Tensor] = {}
        if self.label_slots:
            tok, p = self.top_labels(regions)
            if tgt_out is not None and self.training and self.cfg.label_inject:
                tok, p = self.inject_labels(tok, p, tgt_out)
            feats = torch.cat([self.emb(tok), p.unsqueeze(2), torch.log(p.clamp_min(1e-6)).unsqueeze(2)], dim=2)
            slots = torch.tanh(self.slot_in(feats))  # [B, K, R]
            mem = torch.cat([a, slots], dim=1)  # [B, 49 + K, R]
            out["memory"] = mem
            out["memory_key"] = self.match.key(mem)
            out["label_tokens"] = tok
            out["label_key"] = self.ptr_key(slots)
            if self.cfg.pointer_prior:  # beta log p_k, added to the pointer's scores
                out["label_prior"] = self.cfg.pointer_prior * torch.log(p.clamp_min(1e-6))
        elif self.attention:
            out["memory"] = a
            out["memory_key"] = self.match.key(a)
        else:
            out["memory"] = mean.unsqueeze(1)  # [B, 1, R]
        out[mf.state_input("h")] = torch.tanh(self.init_h(mean))
        out[mf.state_input("c")] = torch.tanh(self.init_c(mean))
        if self.fed_distribution:
            out[mf.state_input("prev_dist")] = start_distribution(mean[:, :1], self.vocab_size, Vocab.bos_id)
        return out

    def encode(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.encode_regions(self.regions(pixels))

    # --- decoder step ------------------------------------------------------------------------

    def step_core(self, token: torch.Tensor, row: torch.Tensor, batch_of_row: torch.Tensor,
                  memory: dict[str, torch.Tensor], states: dict[str, torch.Tensor]):
        """One word; returns (logprobs [N, V], attention [N, 49] or None, new states)."""
        h = states["h"].index_select(0, row)
        c = states["c"].index_select(0, row)
        mem = memory["memory"].index_select(0, batch_of_row)
        if self.attention:
            key = memory["memory_key"].index_select(0, batch_of_row)
            alpha = torch.softmax(self.match.score(h, key), dim=1)
            beta = torch.sigmoid(self.f_beta(h))
            z = beta * torch.bmm(alpha.unsqueeze(1), mem).squeeze(1)
        else:
            alpha = None
            z = mem[:, 0]
        if self.fed_distribution:
            e = self.drop(expected_embedding(states["prev_dist"].index_select(0, row), self.emb.weight))
        else:
            e = self.drop(self.emb(token))
        z = self.drop(z)
        gates = self.W_x(torch.cat([e, z], dim=1)) + self.W_h(h)
        i, f, g, o = gates.chunk(4, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        out = self.drop(torch.tanh(e + self.L_h(h_new) + self.L_z(z)))
        if self.label_slots:
            logprobs, copied = self._copy_mix(self.L_o(out), h_new, z, e, memory, batch_of_row)
            # the attention output's label columns say what the word took from each label: its copy
            # probability (1 - g) ptr_k, not the region attention's (small) mass on the slot
            alpha = torch.cat([alpha[:, : alpha.size(1) - self.label_slots], copied], dim=1)
        else:
            logprobs = torch.log_softmax(self.L_o(out), dim=1)
        new = {"h": h_new, "c": c_new}
        if self.fed_distribution:
            logprobs = keep_token_input(logprobs, token)
            new["prev_dist"] = logprobs.exp()
        return logprobs, alpha, new

    def _copy_mix(self, logits: torch.Tensor, h: torch.Tensor, z: torch.Tensor, e: torch.Tensor,
                  memory: dict[str, torch.Tensor], batch_of_row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(y) [N, V], copy weights (1 - g) ptr [N, K]): log p(y) = log(g softmax(logits) + (1 - g)
        sum_k ptr_k [name_k = y]) (pointer-generator), summed in log space: a word's generated
        log-probability stays exact however small (in probability space the export's float32 softmax
        and PyTorch's parted by 0.06 on rare words)."""
        tok = memory["label_tokens"].index_select(0, batch_of_row)  # [N, K]
        keys = memory["label_key"].index_select(0, batch_of_row)  # [N, K, A]
        q = self.ptr_query(h).unsqueeze(2)  # [N, A, 1]
        scores = torch.bmm(keys, q).squeeze(2) / math.sqrt(keys.size(2))  # [N, K]
        if "label_prior" in memory:  # cfg.pointer_prior: lean toward the names the classifier is sure of
            scores = scores + memory["label_prior"].index_select(0, batch_of_row)
        ptr = torch.softmax(scores, dim=1)
        g = self.copy_gate(torch.cat([h, z, e], dim=1))  # [N, 1] logit: generate vs copy
        onehot = (tok.unsqueeze(2) == self.vocab_ids.view(1, 1, -1)).to(ptr.dtype)  # [N, K, V]
        copy = torch.bmm(ptr.unsqueeze(1), onehot).squeeze(1)  # [N, V], 0 off the slots' names
        if self.cfg.copy_names:  # a slot's name is copied, never generated
            logits = logits.masked_fill(onehot.sum(dim=1) > 0, -1e4)
        gen = _log_sigmoid(g) + torch.log_softmax(logits, dim=1)
        cop = _log_sigmoid(-g) + torch.log(copy.clamp_min(1e-30))
        top = torch.maximum(gen, cop)
        return top + torch.log(torch.exp(gen - top) + torch.exp(cop - top)), torch.exp(_log_sigmoid(-g)) * ptr

    def decode_logprobs(self, logprobs: torch.Tensor, token: torch.Tensor | None = None) -> torch.Tensor:
        """What decoding sees. With block_unk it never says <unk>: its probability is given to the
        other words (renormalised); training still learns <unk> for rare words. With no_end_words
        the end token is impossible right after "a", "the", "of", ... (and as the first word)."""
        masks = []
        if self.cfg.block_unk:
            unk = torch.zeros_like(logprobs[:1], dtype=torch.bool)
            unk[0, UNK_ID] = True
            masks.append(unk)
        if self.cfg.no_end_words and token is not None:
            eos = torch.zeros_like(logprobs[:1], dtype=torch.bool)
            eos[0, Vocab.eos_id] = True
            masks.append(eos & self.no_end.index_select(0, token).unsqueeze(1))
        if not masks:
            return logprobs
        mask = masks[0] if len(masks) == 1 else masks[0] | masks[1]
        out = torch.log_softmax(logprobs.masked_fill(mask, float("-inf")), dim=1)
        # a finite constant (not -inf: beam arithmetic stays finite; exact: no float drift)
        return out.masked_fill(mask, -1e4)

    # --- training ----------------------------------------------------------------------------

    def forward_regions(self, regions: torch.Tensor, tgt_in: torch.Tensor, feed: FeedConfig | None = None,
                        step: int = 0, tgt_out: torch.Tensor | None = None):
        """From CNN regions: log-probs [B, T, V], attention [B, T, 49 (+ K label slots)] or None; teacher
        forcing, or scheduled sampling at optimizer step `step` when `feed` says so (exposure.unroll)."""
        enc = self.encode_regions(regions, tgt_out)
        memory = {n: enc[n] for n in self.memory_names}
        rows = torch.arange(regions.size(0), device=regions.device)

        def step_fn(token, states):
            return self.step_core(token, rows, rows, memory, states)

        return unroll(step_fn, tgt_in, self.initial_states(enc), feed, step)

    def loss(self, regions: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor, feed: FeedConfig | None = None,
             step: int = 0) -> tuple[torch.Tensor, int, float]:
        """(training loss, target token count, mean token NLL).

        loss = mean token NLL + lambda * mean over images of sum_i (tau - sum_t alpha_t,i)^2,
        the notes' doubly stochastic regulariser; padded steps carry no attention.
        """
        lp, att = self.forward_regions(regions, tgt_in, feed, step, tgt_out)
        nll = nn.functional.nll_loss(lp.reshape(-1, lp.size(2)), tgt_out.reshape(-1), ignore_index=0, reduction="sum")
        n = int((tgt_out != 0).sum())
        token_nll = nll / max(n, 1)
        loss = token_nll
        if self.cfg.doubly_stochastic and att is not None:
            real = (tgt_out != 0).to(att.dtype).unsqueeze(2)  # [B, T, 1]
            per_region = (att[:, :, :REGIONS] * real).sum(dim=1)  # [B, 49]: the regions, not the label slots
            loss = loss + self.cfg.doubly_stochastic * ((self.tau - per_region) ** 2).sum(dim=1).mean()
        return loss, n, float(token_nll.detach())


def _drop_saved_no_end(state_dict, prefix, *_args) -> None:
    """Checkpoints written before the no-end set became code-only carry it as a buffer: ignored."""
    state_dict.pop(prefix + "no_end", None)


def _log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """log sigmoid(x) = min(x, 0) - log(1 + exp(-|x|)), written out: exported as Log(Sigmoid) it lost
    relative precision where sigmoid is tiny (ONNX Runtime's Sigmoid is accurate to ~1e-8 absolute,
    so a copy weight of 1e-6 came out 1-3% off and parity failed)."""
    return torch.clamp(x, max=0.0) - torch.log(1.0 + torch.exp(-x.abs()))


class PixelEncoderGraph(nn.Module):
    """`encode(pixels)` with positional outputs in manifest order (what the exporter traces)."""

    def __init__(self, model: CaptionModel):
        super().__init__()
        self.model = model

    def forward(self, pixels):
        out = self.model.encode(pixels)
        return tuple(out[n] for n in self.model.encoder_output_names())


