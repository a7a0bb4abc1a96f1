"""Subword (SentencePiece) translation runs: training and the runtime see identical ids, the model
travels in the bundle with its checksum, a hostile or broken model file is one clear error, and
the recipe's parts (label smoothing, input feeding, the plateau schedule) do what they say."""

import json
import math
import shutil

import pytest
import torch
from paths import TEST_DATA
from toy import tiny_config

from edge_s2s.runtime.errors import BundleError, InputError
from edge_s2s.runtime.subwords import SubwordText, bundle_text
from edge_s2s.runtime.text import Vocab, WordText
from edge_s2s.train.translate.config import ModelConfig, TrainConfig
from edge_s2s.train.translate.data import load_dataset
from edge_s2s.train.translate.loop import Plateau, train_translator
from edge_s2s.train.translate.model import Translator
from edge_s2s.train.translate.subword_train import SubwordOptions, learn_subwords, vocab_of

NEVER_SEEN = "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich, 2026 € & 7 %!"


def _lines() -> list[str]:
    return [ln.split(" ", 1)[1] for ln in (TEST_DATA / "kjv-genesis-1-3.txt").read_text(encoding="utf-8").splitlines()
            if " " in ln]


@pytest.fixture(scope="module")
def parallel_tsv(tmp_path_factory):
    """English verses as targets; their words reversed and upper-cased as a made-up 'source language'."""
    path = tmp_path_factory.mktemp("sw") / "pairs.tsv"
    rows = [f"{' '.join(reversed(t.split())).upper()}\t{t}" for t in _lines()]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_bytes():
    return learn_subwords(_lines(), SubwordOptions(vocab_size=300))


def test_training_and_runtime_ids_are_identical(model_bytes):
    import sentencepiece as spm

    vocab = vocab_of(model_bytes)
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"] and 200 <= len(vocab) <= 300
    text = SubwordText(model_bytes, vocab)
    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    for sentence in _lines()[:20] + [NEVER_SEEN, "  spaces   everywhere  "]:
        pieces = text.pieces(sentence)
        # training cuts pieces and looks them up in tokens.txt; the runtime asks SentencePiece for ids
        assert vocab.encode(pieces) == text.ids(sentence) == sp.encode(sentence)
    for sentence in _lines()[:20]:
        assert text.decode(text.ids(sentence)) == sentence  # lossless on text the model can spell
    assert Vocab.unk_id in text.ids(NEVER_SEEN)  # "€" was never seen: <unk>, not a crash
    assert text.decode([Vocab.bos_id, *text.ids("And God said"), Vocab.eos_id, Vocab.pad_id]) == "And God said"


def test_source_limits_and_empty_input(model_bytes):
    text = SubwordText(model_bytes, vocab_of(model_bytes))
    ids = text.encode_source("And God said", 50)
    assert ids[-1] == Vocab.eos_id and ids[:-1] == text.ids("And God said")
    with pytest.raises(InputError, match="empty"):
        text.encode_source("   ", 50)
    with pytest.raises(InputError, match="limit of 3"):
        text.encode_source("And God said let there be light", 4)


def test_model_and_vocabulary_must_agree(model_bytes, tmp_path):
    vocab = vocab_of(model_bytes)
    with pytest.raises(BundleError, match="pieces but the vocabulary has"):
        SubwordText(model_bytes, Vocab(vocab.tokens[:-1]))
    swapped = list(vocab.tokens)
    swapped[10], swapped[11] = swapped[11], swapped[10]
    with pytest.raises(BundleError, match="piece 10"):
        SubwordText(model_bytes, Vocab(swapped))
    for junk in (b"", b"\x00garbage" * 50, model_bytes[: len(model_bytes) // 2]):
        with pytest.raises(BundleError, match="not a SentencePiece model"):
            SubwordText(junk, vocab)


def test_bundle_text_refuses_unlisted_or_escaping_model_files(model_bytes, tmp_path):
    vocab = vocab_of(model_bytes)
    (tmp_path / "sp.model").write_bytes(model_bytes)
    pre = {"type": "text", "tokenizer": "sentencepiece", "sentencepiece_model": "sp.model", "lowercase": False}
    assert isinstance(bundle_text(tmp_path, pre, {"sp.model": "0" * 64}, vocab), SubwordText)
    assert isinstance(bundle_text(tmp_path, {"type": "text"}, {}, vocab), WordText)
    with pytest.raises(BundleError, match="sha256"):
        bundle_text(tmp_path, pre, {}, vocab)  # not checksummed: refused
    outside = tmp_path.parent / "outside.model"
    outside.write_bytes(model_bytes)
    for name in ("../outside.model", "/etc/passwd"):
        with pytest.raises(BundleError):
            bundle_text(tmp_path, {**pre, "sentencepiece_model": name}, {name: "0" * 64}, vocab)
    (tmp_path / "link.model").symlink_to(outside)
    with pytest.raises(BundleError, match="outside the bundle"):
        bundle_text(tmp_path, {**pre, "sentencepiece_model": "link.model"}, {"link.model": "0" * 64}, vocab)
    with pytest.raises(BundleError, match="tokenizer must be one of"):
        bundle_text(tmp_path, {**pre, "tokenizer": "bytes"}, {"sp.model": "0" * 64}, vocab)
    with pytest.raises(BundleError, match="lowercase"):
        bundle_text(tmp_path, {**pre, "lowercase": "yes"}, {"sp.model": "0" * 64}, vocab)


def test_dataset_cuts_pieces_learnt_from_the_training_split_only(parallel_tsv, tmp_path):
    cfg = tiny_config(parallel_tsv, tmp_path / "run", tokenizer="sentencepiece", subword_vocab_size=200,
                      lowercase=False, max_source_length=60, max_target_length=60)
    data = load_dataset(cfg)
    assert isinstance(data.text, SubwordText) and data.subword_model
    assert data.vocab.tokens == vocab_of(data.subword_model).tokens
    p = data.train[0]
    assert p.tgt_tokens == data.text.pieces(p.target) and data.vocab.encode(p.tgt_tokens) == data.text.ids(p.target)
    # same file and seed: the same model and the same split
    again = load_dataset(cfg)
    assert again.vocab.tokens == data.vocab.tokens and [q.source for q in again.val] == [q.source for q in data.val]


@pytest.mark.slow
def test_subword_run_exports_a_bundle_that_translates_and_verifies(parallel_tsv, tmp_path):
    from edge_s2s.export.translate import export_bundle
    from edge_s2s.runtime.tasks.seq2seq import Seq2Seq
    from edge_s2s.runtime.tools.verify import verify_bundle

    cfg = tiny_config(parallel_tsv, tmp_path / "run", tokenizer="sentencepiece", subword_vocab_size=200,
                      lowercase=False, max_source_length=80, max_target_length=80, epochs=2, val_bleu_max=4,
                      select_by="bleu", label_smoothing=0.1, model=ModelConfig(16, 16, 32, "general", 16,
                                                                                 feed_attention=True,
                                                                                 init_state="encoder"))
    run = train_translator(cfg, progress=False)
    assert (run / "sentencepiece.model").is_file()
    report = export_bundle(run, tmp_path / "bundle")
    assert report.parity["enforced"] and report.parity["search"]
    man = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert man["preprocessing"]["tokenizer"] == "sentencepiece"
    assert man["files"]["sentencepiece.model"] == __import__("hashlib").sha256(
        (run / "sentencepiece.model").read_bytes()).hexdigest()
    assert [s["name"] for s in man["state"]] == ["h", "c", "att_feed"]
    model = Seq2Seq.load(tmp_path / "bundle")
    assert isinstance(model.text, SubwordText)
    r = model.generate(["LIGHT THE WAS THERE"])[0].hypotheses[0]
    assert r.text == model.text.decode(r.ids) and "<unk>" not in r.text and "▁" not in r.text
    cases = verify_bundle(tmp_path / "bundle")
    assert cases and all(c.passed for c in cases)
    # a changed model file is caught by its checksum before SentencePiece ever reads it
    broken = tmp_path / "broken"
    shutil.copytree(tmp_path / "bundle", broken)
    (broken / "sentencepiece.model").write_bytes(b"\x00" * 64)
    with pytest.raises(BundleError, match="sha256"):
        Seq2Seq.load(broken)


def test_label_smoothing_is_the_mixture_it_claims():
    torch.manual_seed(0)
    model = Translator(ModelConfig(8, 8, 16, "general", 8, dropout=0.0), 12).eval()
    src, lengths = torch.tensor([[5, 6, 3], [7, 3, 0]]), torch.tensor([3, 2])
    tgt_in, tgt_out = torch.tensor([[2, 8, 9], [2, 10, 0]]), torch.tensor([[8, 9, 3], [10, 3, 0]])
    with torch.no_grad():
        nll, n = model.loss(src, lengths, tgt_in, tgt_out)
        smooth, _ = model.loss(src, lengths, tgt_in, tgt_out, label_smoothing=0.1)
        lp, _ = model(src, lengths, tgt_in)
    keep = tgt_out != 0
    uniform = -(lp.mean(2) * keep).sum() / n
    assert n == 5 and math.isclose(float(smooth), 0.9 * float(nll) + 0.1 * float(uniform), rel_tol=1e-5)
    assert float(smooth) != pytest.approx(float(nll))


@pytest.mark.parametrize("init_state", ["learned", "encoder"])
def test_input_feeding_step_equals_teacher_forcing(init_state):
    torch.manual_seed(1)
    model = Translator(ModelConfig(8, 8, 16, "additive", 8, feed_attention=True, init_state=init_state), 12).eval()
    assert "att_feed" in [s.name for s in model.state_specs()]
    src, lengths = torch.tensor([[5, 6, 3], [7, 3, 0]]), torch.tensor([3, 2])
    tgt_in = torch.tensor([[2, 8, 9], [2, 10, 0]])
    with torch.no_grad():
        lp, _ = model(src, lengths, tgt_in)
        enc = model.encode(src, lengths)
        # a learned z0 is the same for every sentence; from the encoder it depends on the sentence
        assert torch.equal(enc["state.h"][0], enc["state.h"][1]) == (init_state == "learned")
        states = model.initial_states(enc)
        rows = torch.arange(2)
        for t in range(3):
            out = model.step(tgt_in[:, t], rows, rows, torch.tensor([3]), *(enc[n] for n in model.memory_names),
                             *(states[s.name] for s in model.state_specs()))
            assert torch.allclose(out["logprobs"], lp[:, t], atol=1e-6)
            states = {s.name: out[f"state.{s.name}.next"] for s in model.state_specs()}
        assert float(states["att_feed"].abs().sum()) > 0  # the fed vector is really carried
    with pytest.raises(ValueError, match="LSTM decoder"):
        ModelConfig(feed_attention=True, decoder="ntm")


def test_plateau_decays_and_stops_and_survives_a_checkpoint():
    cfg = TrainConfig(data="x", lr=1.0, lr_decay=0.5, patience=2, select_by="bleu", epochs=10)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    p = Plateau(cfg, opt)
    assert not p.end_epoch({"val_loss": 3.0, "val_bleu": 5.0})
    assert not p.end_epoch({"val_loss": 2.0, "val_bleu": 4.0})  # loss better, BLEU worse: BLEU decides
    assert p.lr == 0.5
    p.start_epoch(2)
    assert opt.param_groups[0]["lr"] == 0.5
    q = Plateau(cfg, opt)
    q.load_state_dict(p.state_dict())
    assert q.end_epoch({"val_loss": 1.0, "val_bleu": 4.5}) and q.lr == 0.25  # second bad epoch: stop
    assert q.complete(3)
    with pytest.raises(ValueError, match="val_bleu_max"):
        TrainConfig(data="x", select_by="bleu", val_bleu_max=0)
