"""End-To-End Memory Networks (Sukhbaatar, Szlam, Weston, Fergus 2015, arXiv:1503.08895) on bAbI.

The story's sentences (the last `memory_size`, train/memn2n/babi.py) are memories; K hops read them
with a question state u (paper Section 2, symbols as there):

    u^1   = sum_j l_j * B q_j                       question, position-encoded (or bag of words)
    m_i   = sum_j l_j * A^k x_ij + T_A^k(i)         match memory of hop k
    c_i   = sum_j l_j * C^k x_ij + T_C^k(i)         output memory of hop k
    p^k   = softmax_i(u^k . m_i)                    over the real sentences and memory_size - n empty
                                                    memories of score 0 (padding rows get 0)
            u^k . m_i, padding 0                    during linear start (LS): no softmax
    o^k   = sum_i p_i c_i
    u^k+1 = u^k + o^k                               adjacent tying
          = H u^k + o^k                             layerwise tying
    a     = log_softmax(W u^K+1)                    over the answer classes

Design decisions (audited against the authors' MemN2N-babi-matlab, facebookarchive/MemNN:
config_babi.m, build_model.m, train.m, train_linear_start.m, memory/Memory.m; and domluna/memn2n):

* Position encoding (PE), `pe_style`. "authors" (default): l_kj = 1 + 4 (k - (d+1)/2)(j - (J+1)/2)
  / (d J), the formula of build_model.m; "paper": l_kj = (1 - j/J) - (k/d)(1 - 2j/J) as printed
  in Section 4.1. They have the same shape (1/2 + 2(x-1/2)(y-1/2) against 1 + 4(...)): the
  printed one is HALF the authors' (mean weight 1/2, not 1 as bag of words), and that halves
  every sentence vector and quarters every match score at the start. Measured (1k, 3 hops,
  seed 1, fixed LS): task 15 test error 34% with "paper", 0.0% with "authors" or 2x "paper".
  j = 1..J is the word's place and J the number of words of THAT sentence (the paper's
  definition; the authors' code uses the longest sentence of the data, also 0.0% on task 15):
  J and j come from the padding mask with tensor ops (a sum and a cumsum), so the ONNX graph
  holds no Python loop over lengths. Padding words get weight 0, also with bag of words, so
  the <pad> embedding row never matters (the authors zero the nil word's row instead).
* Empty memories (`empty_memories`, default on). The authors' memory always has config.sz
  slots; the rows past the story hold only the nil word, whose embedding is kept at zero, so
  each empty slot has score 0 and takes part in the softmax (domluna/memn2n pads the same
  way). That gives the attention somewhere to put mass that reads nothing: measured (3 hops,
  seed 1, authors' PE, fixed LS) task 6 test error 20.1% without, 7.9% with; task 9 19.3% -> 7.5%. Here the
  memory_size - n empty slots are one extra softmax logit log(memory_size - n) (no logit when
  the memory is full) instead of materialised rows, so M stays the story's length; their
  mass is not returned, so the attention over the real sentences sums to 1 minus it. The
  authors size the memory min(50, longest story of the task); memory_size 50 for every task
  gave the same errors (task 6 8.1%, task 9 7.5%).
* Temporal encoding (TE): time index i = 0 for the MOST RECENT sentence, n-1 for the
  oldest (the paper writes memory in reverse order); rows are oldest first as in
  train/memn2n/babi.py (row r of n real rows has i = n-1-r). Indices are clipped to
  memory_size-1.
* Random noise (RN), training only (`random_time_index`), as in the authors' Matlab code
  (MemN2N-babi-matlab/train.m): for a story of n sentences draw nblank uniformly from
  0..ceil(rate*n), pretend nblank empty memories sit at random places among the n real
  ones, and give each real sentence its time index in that longer memory (a random
  n-subset of 0..n+nblank-1, kept in order, most recent smallest). The empty memories are
  not materialised as slots: they would hold no words, and their only effect is the gaps
  they leave in the real sentences' time indices, which is what TE reads. Evaluation
  and export always use the plain indices.
* Tying. "adjacent": K+1 word tables E_0..E_K with A^k = E_{k-1}, C^k = E_k, so
  A^{k+1} = C^k, B = A^1 = E_0, and W^T = C^K = E_K; the time tables are tied the same
  way (T_A^{k+1} = T_C^k; the authors' code appends time words to the vocabulary, so
  their time rows follow the word tying). W's row for answer class a is E_K's row of the
  answer word; a list answer ("apple,football", tasks 8 and 19) is one class and gets an
  extra row of its own after the vocabulary (the authors' code makes it one dictionary
  word). "layerwise": one A and one C (and T_A, T_C) for every hop, separate B and W,
  and the linear map H between hops (u^{k+1} = H u^k + o^k, also before W).
* Linear start (LS): `model.linear_start = True` drops the softmax of every hop
  (p = raw scores, 0 on padding). `train_memn2n` starts so with lr `ls_lr` for
  `ls_max_epochs` (20) epochs, as the authors' code (train_linear_start.m: ls_nepochs = 20,
  no decay), then puts the softmax back. The paper's rule (Section 4.2: until the
  validation loss stops decreasing) is there as `ls_patience` > 0: end LS when the
  validation loss has made no new low for that many epochs. It ended LS after 6-9 epochs and
  lost on all four tasks tried (seed 1, 3 hops, authors' PE, no empty memories; test error
  patience 3 / fixed 20: task 2 14.6 / 11.4%, task 4 5.1 / 2.6%, task 6 20.4 / 20.1%, task
  16 0.9 / 0.3%), so the default is 0 (fixed length). Then `epochs` epochs with the softmax follow. As in the authors'
  config (config_babi.m sets init_lrate = 0.01/2 when linear_start), an LS run keeps `ls_lr`
  as the starting rate of that second phase too; `lr` is for runs without LS.
* Training as in the paper: SGD without momentum or weight decay, batch 32 with the loss
  SUMMED over the batch ("cost is not averaged over a batch"), gradient norm clipped at 40,
  learning rate halved every 25 epochs, every weight drawn from N(0, 0.1), 100 epochs after
  LS. Left as they were, knowingly: the norm is clipped over all parameters together (the
  authors clip each weight matrix alone); an
  epoch is a shuffled pass over the training questions (the authors draw floor(N/32)
  batches with replacement); the held-out 10% is drawn at random (the authors take the last
  10% of the file for one task, a random 10% for joint training); the answer softmax is over
  the answer classes (the authors' over the whole vocabulary).
* Batches are cut to their own longest story and sentence (`_take`): padding rows and
  words change nothing (masked), so this is only speed, worth most in joint training where
  task 3's 50-sentence stories would pad every batch.
* Tokens: train/memn2n/babi.py lower-cases and drops "." and "?", as parseBabiTask.m; the question
  is no memory (include_question = false there too); time index 0 is the most recent
  sentence, as the authors' time words (n:-1:1).
* Training: train/memn2n/loop.py (the shared epoch loop with this schedule as task hooks).
* Results: docs/babi-results.md (scripts/babi_table.py), joint training train/memn2n/experiments.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...runtime.text import Vocab
from .babi import MEMORY_SIZE, Example, encode_example

TYINGS = ("adjacent", "layerwise")
ENCODINGS = ("pe", "bow")
PE_STYLES = ("authors", "paper")
# Values of options added after the first runs were saved, for configs that lack them (from_dict):
# what those runs were trained with.
LEGACY = {"pe_style": "paper", "empty_memories": False, "ls_patience": 3}
_NEG = -1e9  # the score of a padding slot before the softmax: exp underflows to exactly 0


@dataclass
class MemN2NConfig:
    """One memory network and its training (defaults: the paper's bAbI setting, PE LS RN, 3 hops).

    hops: K memory layers, 1 to 3 as in the paper.
    dim: embedding size d (20 for bAbI).
    memory_size: sentences kept in memory (the last 50) and rows of the time tables.
    tying: "adjacent" or "layerwise" (the latter adds H).
    encoding: "pe" (position encoding) or "bow" (bag of words).
    pe_style: "authors" (the authors' code, mean weight 1) or "paper" (the printed formula, half as
      large); module docstring.
    empty_memories: the softmax also counts the memory_size - n empty memories, each with
      score 0, as the authors' code (module docstring).
    temporal: add the time embeddings T_A, T_C (TE).
    random_noise: RN rate, the fraction of empty memories inserted at training time
      (0.1 in the paper; 0 = off); needs temporal.
    linear_start: start without the memory softmax (LS), lr ls_lr, for ls_max_epochs epochs
      (or until the validation loss makes no new low for ls_patience epochs, when
      ls_patience > 0); then `epochs` epochs with the softmax (the LS epochs come on top).
    lr, lr_decay_every: SGD rate, halved every lr_decay_every epochs.
    clip: gradient L2 norm limit (0 = off).
    init_std: every weight starts N(0, init_std).
    val_fraction: share of the training examples held out when no validation set is given.
    """

    hops: int = 3
    dim: int = 20
    memory_size: int = MEMORY_SIZE
    tying: str = "adjacent"
    encoding: str = "pe"
    pe_style: str = "authors"
    empty_memories: bool = True
    temporal: bool = True
    random_noise: float = 0.1
    linear_start: bool = True
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.01
    lr_decay_every: int = 25
    ls_lr: float = 0.005
    ls_max_epochs: int = 20
    ls_patience: int = 0
    clip: float = 40.0
    init_std: float = 0.1
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.hops, int) or not 1 <= self.hops <= 3:
            raise ValueError(f"MemN2NConfig.hops must be 1, 2 or 3 (the paper's range), got {self.hops!r}")
        for name in ("dim", "memory_size", "epochs", "batch_size", "lr_decay_every", "ls_max_epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"MemN2NConfig.{name} must be a positive integer, got {v!r}")
        if not isinstance(self.ls_patience, int) or self.ls_patience < 0:
            raise ValueError(f"MemN2NConfig.ls_patience must be an integer >= 0 (0 = a fixed ls_max_epochs), "
                             f"got {self.ls_patience!r}")
        if self.pe_style not in PE_STYLES:
            raise ValueError(f"MemN2NConfig.pe_style must be one of {', '.join(PE_STYLES)}, got {self.pe_style!r}")
        if self.tying not in TYINGS:
            raise ValueError(f"MemN2NConfig.tying must be one of {', '.join(TYINGS)}, got {self.tying!r}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"MemN2NConfig.encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if not 0.0 <= self.random_noise < 1.0:
            raise ValueError(f"MemN2NConfig.random_noise must be in [0, 1) (0.1 = 10% empty memories), "
                             f"got {self.random_noise}")
        if self.random_noise > 0 and not self.temporal:
            raise ValueError("MemN2NConfig: random_noise shifts the temporal indices, so it needs temporal=True "
                             "(or set random_noise=0)")
        for name in ("lr", "ls_lr", "init_std"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MemN2NConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.clip < 0:
            raise ValueError(f"MemN2NConfig.clip must be >= 0 (0 = off), got {self.clip}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"MemN2NConfig.val_fraction must be in (0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MemN2NConfig:
        """A config saved by to_dict; options the saved one lacks take their LEGACY values (what it
        was trained with), not today's defaults, so an old run loads the network it trained."""
        return cls(**{**LEGACY, **d})


# --- encodings ---------------------------------------------------------------------------


def word_weights(ids: torch.Tensor, dim: int, position: bool = True, style: str = "authors") -> torch.Tensor:
    """ids [..., J] int64 (0 = padding) -> weights l [..., J, dim] of each word in its sentence.

    position, style "authors": l_kj = 1 + 4 (k - (d+1)/2)(j - (J+1)/2) / (d J); style "paper":
    l_kj = (1 - j/J) - (k/d)(1 - 2j/J); j, k 1-based and J the sentence's own number of words.
    Not position: 1 (bag of words). Padding words get 0 either way. Tensor ops only (J a
    masked sum, j a masked cumsum), so it exports for any J.
    """
    mask = (ids != 0).to(torch.float32)
    if not position:
        return mask.unsqueeze(-1).expand(*mask.shape, dim)
    length = mask.sum(-1, keepdim=True).clamp(min=1.0)  # J, at least 1 so an empty row is no 0/0
    j = mask.cumsum(-1).unsqueeze(-1)  # [..., J, 1]
    J = length.unsqueeze(-1)
    k = torch.arange(1, dim + 1, dtype=torch.float32, device=ids.device)  # [d]
    if style == "paper":
        frac = j / J
        weights = (1.0 - frac) - (k / dim) * (1.0 - 2.0 * frac)
    else:
        weights = 1.0 + 4.0 * (k - (dim + 1) / 2.0) * (j - (J + 1.0) / 2.0) / (dim * J)
    return weights * mask.unsqueeze(-1)


def slot_index(story: torch.Tensor) -> torch.Tensor:
    """story [B, M, J] -> [B, M] int64 row numbers 0..M-1 (a cumsum, so M stays dynamic in ONNX)."""
    return torch.ones_like(story[:, :, 0]).cumsum(1) - 1


def time_index(n_sentences: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """The TE index of each row: 0 for the most recent real sentence (row n-1), n-1 for the
    oldest (row 0); padding rows (r >= n) get 0, they are masked anyway.
    n_sentences [B], slots [B, M] from `slot_index` -> [B, M] int64."""
    return (n_sentences.unsqueeze(1) - 1 - slots).clamp(min=0)


def random_time_index(n_sentences: np.ndarray, slots: int, rate: float, rng: np.random.Generator,
                      memory_size: int = MEMORY_SIZE) -> np.ndarray:
    """RN time indices [B, slots] int64 for training: the real sentences' indices in a memory
    with nblank ~ U{0..ceil(rate*n)} empty memories inserted at random places.

    Row r < n gets the (n-1-r)-th smallest of a random n-subset of 0..n+nblank-1, so order
    is kept (the most recent sentence still has the smallest index) and the gaps are the
    empty memories; indices are clipped to memory_size-1. Rows r >= n get 0. rate 0 gives
    `time_index` exactly.
    """
    n = np.asarray(n_sentences, dtype=np.int64)
    B = n.shape[0]
    nblank = rng.integers(0, np.ceil(rate * n).astype(np.int64) + 1)  # inclusive upper bound
    total = n + nblank
    width = max(int(total.max(initial=0)), slots, 1)
    keys = rng.random((B, width))
    keys[np.arange(width)[None, :] >= total[:, None]] = np.inf  # only positions < n+nblank exist
    picked = np.argsort(keys, axis=1, kind="stable")[:, :slots]  # the first n are a random n-subset
    cols = np.arange(slots)[None, :]
    picked = np.where(cols < n[:, None], picked, np.iinfo(np.int64).max)
    picked = np.sort(picked, axis=1)  # the n chosen positions, ascending, in columns 0..n-1
    reverse = np.clip(n[:, None] - 1 - cols, 0, None)  # row r reads the (n-1-r)-th smallest
    out = np.take_along_axis(picked, reverse, axis=1)
    out = np.where(cols < n[:, None], out, 0)
    return np.minimum(out, memory_size - 1).astype(np.int64)


def answer_word_ids(answers: Sequence[str], vocab: Vocab) -> list[int]:
    """The output-embedding row of each answer class (adjacent tying's W^T = C^K).

    A one-word answer in the vocabulary uses that word's row; any other answer (a list
    such as "apple,football", or a word the vocabulary lacks) gets a row of its own,
    numbered from len(vocab) on.
    """
    ids, extra = [], len(vocab)
    for a in answers:
        if "," not in a and a in vocab.index:
            ids.append(vocab.index[a])
        else:
            ids.append(extra)
            extra += 1
    return ids


# --- the model ---------------------------------------------------------------------------


class MemN2N(nn.Module):
    """The K-hop memory network (module docstring); answers index `answers` (babi.answer_vocab).

    forward(story [B, M, J] int64, question [B, J'] int64, n_sentences [B] int64, time=None)
    -> (answer log-probs [B, A], attention [B, K, M]). `time` [B, M] overrides the TE
    indices (training's RN); None uses `time_index`. Rows at or after n_sentences are
    padding, M may be anything up to memory_size (more works: indices are clipped). With
    cfg.empty_memories the attention of a hop sums to 1 minus the empty memories' share.
    """

    def __init__(self, cfg: MemN2NConfig, vocab: Vocab, answers: Sequence[str]):
        super().__init__()
        if not answers:
            raise ValueError("MemN2N needs at least one answer class: build them with babi.answer_vocab")
        self.cfg = cfg
        self.vocab = vocab
        self.answers = list(answers)
        self.linear_start = False  # the trainer switches it on for LS
        K, d = cfg.hops, cfg.dim
        ids = answer_word_ids(self.answers, vocab)
        rows = max([len(vocab), *[i + 1 for i in ids]])

        def table(n: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(n, d) * cfg.init_std)

        if cfg.tying == "adjacent":
            self.words = nn.ParameterList([table(rows) for _ in range(K + 1)])
            self.times = nn.ParameterList([table(cfg.memory_size) for _ in range(K + 1)] if cfg.temporal else [])
            self._a, self._c, self._b = list(range(K)), list(range(1, K + 1)), 0
            self.register_buffer("answer_ids", torch.tensor(ids, dtype=torch.int64), persistent=False)
            self.answer_weight = None
            self.H = None
        else:
            self.words = nn.ParameterList([table(len(vocab)) for _ in range(3)])  # A, C, B
            self.times = nn.ParameterList([table(cfg.memory_size) for _ in range(2)] if cfg.temporal else [])
            self._a, self._c, self._b = [0] * K, [1] * K, 2
            self.answer_weight = table(len(self.answers))
            self.H = nn.Linear(d, d, bias=False)
            with torch.no_grad():
                self.H.weight.normal_(0.0, cfg.init_std)

    # named views of the tied tables, k = 1..K as in the paper

    def A(self, k: int) -> nn.Parameter:
        return self.words[self._a[k - 1]]

    def C(self, k: int) -> nn.Parameter:
        return self.words[self._c[k - 1]]

    def TA(self, k: int) -> nn.Parameter:
        return self.times[self._a[k - 1]]

    def TC(self, k: int) -> nn.Parameter:
        return self.times[self._c[k - 1]]

    @property
    def B(self) -> nn.Parameter:
        return self.words[self._b]

    @property
    def W(self) -> torch.Tensor:
        """[A, d]: the answer matrix (adjacent: C^K's rows of the answers, so gradients reach C^K)."""
        if self.answer_weight is not None:
            return self.answer_weight
        return self.words[self._c[-1]].index_select(0, self.answer_ids)

    def forward(self, story: torch.Tensor, question: torch.Tensor, n_sentences: torch.Tensor,
                time: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        position = cfg.encoding == "pe"
        style = cfg.pe_style
        slots = slot_index(story)
        real = slots < n_sentences.unsqueeze(1)  # [B, M]
        realf = real.to(torch.float32)
        if time is None:
            time = time_index(n_sentences, slots)
        time = time.clamp(max=cfg.memory_size - 1)
        l_story = word_weights(story, cfg.dim, position, style)  # [B, M, J, d]
        u = (F.embedding(question, self.B) * word_weights(question, cfg.dim, position, style)).sum(1)  # [B, d]
        empty = None
        if cfg.empty_memories:  # one logit for the memory_size - n empty slots of score 0: log(count)
            count = (cfg.memory_size - n_sentences).clamp(min=0).to(torch.float32).unsqueeze(1)  # [B, 1]
            empty = torch.log(count.clamp(min=1.0)).masked_fill(count < 0.5, _NEG)
        memories: dict[int, torch.Tensor] = {}  # table -> [B, M, d]; adjacent uses each table twice

        def memory(t: int) -> torch.Tensor:
            if t not in memories:
                m = (F.embedding(story, self.words[t]) * l_story).sum(2)
                if cfg.temporal:
                    m = m + F.embedding(time, self.times[t])
                memories[t] = m
            return memories[t]

        attention = []
        for k in range(cfg.hops):
            m, c = memory(self._a[k]), memory(self._c[k])
            scores = (m * u.unsqueeze(1)).sum(-1)  # [B, M]
            if self.linear_start:
                p = scores * realf
            elif empty is None:
                p = torch.softmax(scores.masked_fill(~real, _NEG), dim=-1) * realf
            else:
                p = torch.softmax(torch.cat([scores.masked_fill(~real, _NEG), empty], 1), dim=-1)
                p = p[:, :-1] * realf
            o = (p.unsqueeze(-1) * c).sum(1)
            u = (self.H(u) if self.H is not None else u) + o
            attention.append(p)
        logits = u @ self.W.t()
        return F.log_softmax(logits, dim=-1), torch.stack(attention, 1)


# --- data --------------------------------------------------------------------------------


def encode_examples(examples: Sequence[Example], vocab: Vocab, answers: Sequence[str],
                    memory_size: int = MEMORY_SIZE) -> dict[str, torch.Tensor]:
    """Tensors of many examples: story [N, M, J], question [N, J], n_sentences [N], answer [N].

    M is the largest memory window actually used (<= memory_size) and J the longest
    sentence or question, so no batch carries 50 empty rows. An answer not among
    `answers` (a test answer training never saw) gets class -1: always counted wrong,
    never trained on.
    """
    if not examples:
        raise ValueError("no examples to encode")
    known = set(answers)
    max_words = max(max((len(s) for s in ex.story[-memory_size:]), default=1) for ex in examples)
    max_words = max(max_words, max(len(ex.question) for ex in examples), 1)
    slots = max(max(min(len(ex.story), memory_size) for ex in examples), 1)
    story = np.zeros((len(examples), slots, max_words), dtype=np.int64)
    question = np.zeros((len(examples), max_words), dtype=np.int64)
    n = np.zeros(len(examples), dtype=np.int64)
    answer = np.full(len(examples), -1, dtype=np.int64)
    for i, ex in enumerate(examples):
        enc = encode_example(ex, vocab, slots, max_words,
                             answers=answers if ex.answer in known else [ex.answer])
        story[i], question[i], n[i] = enc.story, enc.question, enc.n_sentences
        if ex.answer in known:
            answer[i] = enc.answer
    return {"story": torch.from_numpy(story), "question": torch.from_numpy(question),
            "n_sentences": torch.from_numpy(n), "answer": torch.from_numpy(answer)}


def _batches(n: int, size: int, order: np.ndarray | None = None):
    idx = np.arange(n) if order is None else order
    for start in range(0, n, size):
        yield torch.from_numpy(idx[start : start + size])


def _take(data: dict[str, torch.Tensor], idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(story, question, n_sentences) of the rows idx, cut to their longest story and words.

    Padding rows and words are masked, so the cut changes no output, only the work."""
    n = data["n_sentences"][idx]
    story = data["story"][idx][:, : max(int(n.max()), 1)]
    question = data["question"][idx]
    return story[:, :, : _used(story)], question[:, : _used(question)], n


def _used(ids: torch.Tensor) -> int:
    """1 + the last word position holding a non-padding id anywhere in ids [..., J] (at least 1)."""
    cols = torch.nonzero((ids != 0).reshape(-1, ids.shape[-1]).any(0))
    return int(cols.max()) + 1 if len(cols) else 1


@torch.no_grad()
def _loss_error(model: MemN2N, data: dict[str, torch.Tensor], batch: int = 500) -> tuple[float, float]:
    """(mean NLL over examples with a known answer, error rate over all examples)."""
    was = model.training
    model.eval()
    nll, wrong, known = 0.0, 0, 0
    N = data["answer"].shape[0]
    for idx in _batches(N, batch):
        logp, _ = model(*_take(data, idx))
        ans = data["answer"][idx]
        ok = ans >= 0
        wrong += int((logp.argmax(-1) != ans).sum())
        if ok.any():
            nll -= float(logp[ok].gather(1, ans[ok].unsqueeze(1)).sum())
            known += int(ok.sum())
    model.train(was)
    return nll / max(known, 1), wrong / N


def evaluate(model: MemN2N, examples: Sequence[Example]) -> float:
    """Error rate of `model` on examples (an answer training never saw counts as wrong)."""
    data = encode_examples(examples, model.vocab, model.answers, model.cfg.memory_size)
    return _loss_error(model, data)[1]


# --- training ----------------------------------------------------------------------------


__all__ = ["MemN2NConfig", "MemN2N", "word_weights", "time_index", "random_time_index", "slot_index",
           "answer_word_ids", "encode_examples", "evaluate", "PE_STYLES", "LEGACY"]
