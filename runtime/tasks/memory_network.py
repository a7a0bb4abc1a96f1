"""`MemoryNetwork`: ask an exported End-To-End Memory Network questions about a story.

numpy + onnxruntime only. The story is cut into sentences and words exactly as training
cut bAbI (runtime/tasks/story.py); the most recent `memory_size` sentences are kept, as the
paper does; words the model never saw become <unk>. Both are reported on the `Answer`
(`notes`), never silent. One graph call answers a whole batch: stories and questions are
0-padded to the longest, and padding changes nothing (padding words and sentences get
weight 0 inside the graph).

    net = MemoryNetwork.load("bundles/babi1")
    a = net.answer("Mary moved to the bathroom.\\nJohn went to the hallway.", "Where is Mary?")
    a.text, a.probability, a.attention      # attention [hops, kept sentences]
    a.top(hop=1, k=3)                       # [(sentence index, sentence, weight), ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from ..bundle import FIX, check_files, check_graph
from ..errors import BundleError, InputError, int_option
from ..session import create_session, graph_errors
from ..text import UNK, Vocab
from .memory_manifest import INPUTS, N_SENTENCES, OUTPUTS, QUESTION, STORY, MemoryManifest, read_answers
from .story import Sentence, parse_story, question_words


@dataclass
class Memory:
    """A story ready for the network: the kept sentences (most recent `memory_size`), their ids."""

    sentences: list[Sentence]  # kept, oldest first
    ids: list[list[int]]  # word ids of each kept sentence
    dropped: int  # oldest sentences that did not fit
    total: int  # sentences in the story as given
    unknown_words: list[str]  # words of the kept sentences the vocabulary lacks, first appearance order


Story = Union[str, Sequence[str], Memory]


@dataclass
class Answer:
    """The network's answer to one question about one story."""

    question: str
    text: str  # the most likely answer class ("apple,football" for a list answer)
    probability: float
    log_probs: np.ndarray  # [A] float32 over `MemoryNetwork.answers`
    sentences: list[str]  # the sentences in memory, oldest first
    attention: np.ndarray  # [hops, len(sentences)]: each hop's weights over them
    unknown_words: list[str] = field(default_factory=list)  # mapped to <unk>, story and question
    dropped: int = 0  # oldest story sentences left out (more than memory_size)
    memory_size: int = 0

    @property
    def hops(self) -> int:
        return int(self.attention.shape[0])

    def top(self, hop: int, k: int = 3) -> list[tuple[int, str, float]]:
        """The k sentences hop `hop` (1..hops, as the paper counts) attends to most, strongest first."""
        if not 1 <= hop <= self.hops:
            raise InputError(f"hop {hop} does not exist: this model has hops 1 to {self.hops}")
        w = self.attention[hop - 1]
        order = np.argsort(-w, kind="stable")[: max(k, 0)]
        return [(int(i), self.sentences[i], float(w[i])) for i in order]

    @property
    def notes(self) -> list[str]:
        """What the runtime changed about the input: unknown words, dropped sentences."""
        out = []
        if self.unknown_words:
            out.append(unknown_note(self.unknown_words))
        if self.dropped:
            out.append(dropped_note(self.dropped, self.dropped + len(self.sentences), self.memory_size))
        return out


def unknown_note(unknown: Sequence[str]) -> str:
    return (f"unknown word{'s' if len(unknown) > 1 else ''} {', '.join(repr(w) for w in unknown)} "
            f"(not in this model's vocabulary) read as {UNK}")


def dropped_note(dropped: int, total: int, memory_size: int) -> str:
    return (f"the story has {total} sentences, more than this model's memory of {memory_size}: the {dropped} "
            f"oldest {'were' if dropped > 1 else 'was'} dropped (the most recent are kept, as the paper does)")


def _pad(rows: Sequence[Sequence[int]], width: int) -> np.ndarray:
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


class MemoryNetwork:
    """A loaded, checked memory-network bundle (task "answer")."""

    def __init__(self, path: Path, manifest: MemoryManifest, vocab: Vocab, answers: list[str], session) -> None:
        self.path = path
        self.manifest = manifest
        self.vocab = vocab
        self.answers = answers
        self.session = session

    @staticmethod
    def check(path: str | Path, full: bool = False) -> tuple[MemoryManifest, Vocab, list[str]]:
        """Everything that needs no session: manifest fields, files and checksums (full=True hashes
        every file afresh, else unchanged files keep their cached sha256), vocabulary, answers."""
        directory = Path(path)
        m = MemoryManifest.load(directory)
        check_files(directory, m.files, [m.graph.file, m.tokens.file, m.answers.file], full)
        vocab = Vocab.load(directory / m.tokens.file)
        if len(vocab) != m.tokens.size:
            raise BundleError(f"{m.tokens.file} has {len(vocab)} tokens but manifest.json says {m.tokens.size}: {FIX}")
        return m, vocab, read_answers(directory / m.answers.file, m.answers.size)

    @classmethod
    def load(cls, path: str | Path, provider: str = "cpu", threads: int = 0,
             optimization: str = "all") -> MemoryNetwork:
        """Read and check the bundle (files, checksums, vocabulary, answers, graph I/O), open the session."""
        directory = Path(path)
        m, vocab, answers = cls.check(directory)
        session = create_session(directory / m.graph.file, provider, threads, optimization, m.files.get(m.graph.file))
        check_graph(session, m.graph, m.graph.file, INPUTS, OUTPUTS)
        return cls(directory, m, vocab, answers, session)

    @property
    def memory_size(self) -> int:
        return self.manifest.memory_size

    @property
    def hops(self) -> int:
        return self.manifest.hops

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    # --- input ---------------------------------------------------------------------------

    def memory(self, story: Story, source: str = "story") -> Memory:
        """Parse a story (text, one sentence a line; or a list of sentences) and keep what fits."""
        if isinstance(story, Memory):
            return story
        sentences = parse_story(story, source)
        dropped = max(0, len(sentences) - self.memory_size)
        kept = sentences[dropped:]
        ids = [self.vocab.encode(s.words) for s in kept]
        unknown = [w for s in kept for w in s.words if w not in self.vocab.index]
        return Memory(kept, ids, dropped, len(sentences), list(dict.fromkeys(unknown)))

    # --- answering -----------------------------------------------------------------------

    def answer(self, story: Story, question: str) -> Answer:
        """The answer to one question about one story."""
        return self.answer_many([story], [question])[0]

    def answer_many(self, stories: Sequence[Story], questions: Sequence[str], batch_size: int = 64) -> list[Answer]:
        """Answers to questions[i] about stories[i], `batch_size` per graph call.

        A story asked several questions can be given once as `memory(story)` and repeated.
        """
        if isinstance(stories, str) or isinstance(questions, str):
            raise InputError("answer_many takes a list of stories and a list of questions (one story per "
                             "question); use answer() for one")
        if len(stories) != len(questions):
            raise InputError(f"{len(stories)} stories for {len(questions)} questions: give one story per question "
                             "(repeat a story to ask it several questions)")
        int_option(batch_size, "batch_size", 1)
        many = len(questions) > 1
        mems = [self.memory(s, f"story {i + 1}" if many else "story") for i, s in enumerate(stories)]
        qwords = [question_words(q, f"question {i + 1}" if many else "the question") for i, q in enumerate(questions)]
        out: list[Answer] = []
        for start in range(0, len(mems), batch_size):
            chunk = slice(start, start + batch_size)
            story, question, n = self.encode(mems[chunk], qwords[chunk])
            logp, att = self.run(story, question, n)
            for b, (mem, q, qw) in enumerate(zip(mems[chunk], questions[chunk], qwords[chunk])):
                best = int(np.argmax(logp[b]))
                unknown = list(dict.fromkeys(mem.unknown_words + [w for w in qw if w not in self.vocab.index]))
                out.append(Answer(question=q, text=self.answers[best], probability=float(np.exp(logp[b, best])),
                                  log_probs=logp[b].copy(), sentences=[s.text for s in mem.sentences],
                                  attention=att[b, :, : len(mem.sentences)].copy(), unknown_words=unknown,
                                  dropped=mem.dropped, memory_size=self.memory_size))
        return out

    def encode(self, memories: Sequence[Memory], questions: Sequence[Sequence[str]]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The graph inputs of a batch: story [B, M, J], question [B, Jq], n_sentences [B], 0-padded."""
        M = max(len(m.ids) for m in memories)
        J = max(len(s) for m in memories for s in m.ids)
        story = np.zeros((len(memories), M, J), dtype=np.int64)
        for b, m in enumerate(memories):
            story[b, : len(m.ids)] = _pad(m.ids, J)
        q_ids = [self.vocab.encode(q) for q in questions]
        question = _pad(q_ids, max(len(q) for q in q_ids))
        n = np.array([len(m.ids) for m in memories], dtype=np.int64)
        return story, question, n

    def run(self, story: np.ndarray, question: np.ndarray, n_sentences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One graph call: (answer log-probs [B, A], attention [B, hops, M])."""
        with graph_errors("answering"):
            logp, att = self.session.run(OUTPUTS, {STORY: story, QUESTION: question, N_SENTENCES: n_sentences})
        return logp, att


