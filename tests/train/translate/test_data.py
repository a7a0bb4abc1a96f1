"""Dataset reader errors, the shared vocabulary, the deterministic split and batching."""

import pytest

from edge_s2s.runtime.errors import EdgeS2SError
from edge_s2s.train.core.epochs import epoch_batches
from edge_s2s.train.core.errors import DataError
from edge_s2s.train.translate.config import ModelConfig, TrainConfig
from edge_s2s.train.translate.data import collate, load_dataset, read_tsv, split


def test_reads_pairs_and_lowercases(tmp_path):
    p = tmp_path / "a.tsv"
    p.write_text("Hallo Welt!\tHello world!\n\nGuten Tag.\tGood day.\r\n", encoding="utf-8")
    pairs = read_tsv(p)
    assert [x.src_tokens for x in pairs] == [["hallo", "welt", "!"], ["guten", "tag", "."]]
    assert pairs[1].tgt_tokens == ["good", "day", "."]


@pytest.mark.parametrize("content, where, what", [
    (b"a\tb\nno tab here\n", ":2:", "one tab"),
    (b"a\tb\nx\ty\tz\n", ":2:", "found 2 tabs"),
    (b"a\tb\n\t...\n", ":2:", "source side is empty"),
    (b"a\tb\nc\td\ne\t\xff\xfe\n", ":3:", "not UTF-8"),
])
def test_malformed_line_names_file_and_line(tmp_path, content, where, what):
    p = tmp_path / "bad.tsv"
    p.write_bytes(content)
    with pytest.raises(DataError) as e:
        read_tsv(p)
    msg = str(e.value)
    assert f"bad.tsv{where}" in msg and what in msg and "\n" not in msg
    assert isinstance(e.value, EdgeS2SError) and isinstance(e.value, ValueError)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_tsv(tmp_path / "nope.tsv")
    (tmp_path / "empty.tsv").write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        read_tsv(tmp_path / "empty.tsv")


def test_shared_vocab_from_training_split_only(toy_tsv, tmp_path):
    cfg = TrainConfig(data=str(toy_tsv), out_dir=str(tmp_path), model=ModelConfig(16, 16, 32), val_fraction=0.1, seed=3)
    ds = load_dataset(cfg)
    assert ds.vocab.tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    train_tokens = {t for p in ds.train for t in p.src_tokens + p.tgt_tokens}
    assert set(ds.vocab.tokens[4:]) == train_tokens  # source and target words in one table
    assert len(ds.val) == 24 and len(ds.train) == 216
    again = load_dataset(cfg)
    assert [p.source for p in again.val] == [p.source for p in ds.val]  # deterministic split
    other = load_dataset(TrainConfig(**{**cfg.to_dict(), "model": cfg.model, "seed": 4}))
    assert [p.source for p in other.val] != [p.source for p in ds.val]


def test_split_and_length_filter(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("".join(f"w{i} " * (i % 7 + 1) + f"\tv{i}\n" for i in range(50)))
    cfg = TrainConfig(data=str(p), out_dir=str(tmp_path), model=ModelConfig(16, 16, 32), max_source_length=3)
    ds = load_dataset(cfg)
    assert all(len(x.src_tokens) <= 3 for x in ds.train + ds.val)
    assert ds.skipped == sum(1 for i in range(50) if i % 7 + 1 > 3)
    with pytest.raises(DataError, match="too few"):
        split(read_tsv(p)[:1], 0.5, 0)


def test_batches_pad_and_sort(toy_tsv, tmp_path):
    cfg = TrainConfig(data=str(toy_tsv), out_dir=str(tmp_path), model=ModelConfig(16, 16, 32))
    ds = load_dataset(cfg)
    lengths = [len(p.src_tokens) for p in ds.train]
    batches = epoch_batches(len(ds.train), lengths, 16, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(ds.train)))
    assert batches == epoch_batches(len(ds.train), lengths, 16, seed=1, epoch=0)
    assert batches != epoch_batches(len(ds.train), lengths, 16, seed=1, epoch=1)
    b = collate([ds.train[i] for i in batches[0]], ds.vocab, batches[0])
    assert b.src.shape[0] == len(batches[0])
    for row, n in zip(b.src, b.src_lengths):
        assert int(row[n - 1]) == ds.vocab.eos_id and (row[n:] == 0).all() and (row[:n] != 0).all()
    assert (b.tgt_in[:, 0] == ds.vocab.bos_id).all()
    # tgt_out is tgt_in shifted left, ending with </s>
    for i in range(b.tgt_in.shape[0]):
        n = int((b.tgt_out[i] != 0).sum())
        assert b.tgt_out[i, n - 1] == ds.vocab.eos_id
        assert (b.tgt_out[i, : n - 1] == b.tgt_in[i, 1:n]).all()


def test_config_validation():
    with pytest.raises(ValueError, match="dec_hidden .* must equal"):
        ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=48, attention="dot")
    with pytest.raises(ValueError, match="attention must be one of"):
        ModelConfig(attention="luong")
    with pytest.raises(ValueError, match="val_fraction"):
        TrainConfig(val_fraction=0.0)
    cfg = TrainConfig(model=ModelConfig(16, 16, 32, "additive", 8))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"nope": 1})
