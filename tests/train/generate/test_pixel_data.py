"""Images as token sequences: IDX files written here, scikit-learn's digits, Fashion-MNIST
when Debian's package is installed, quantisation and the pixel-id round trip."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from edge_s2s.train.generate.pixel_data import (
    DATASETS,
    DIGIT_CLASSES,
    FASHION_CLASSES,
    FASHION_DIR,
    PixelDataError,
    dequantise,
    ids_to_images,
    images_to_ids,
    load_digits,
    load_fashion_mnist,
    pixel_vocab,
    quantise,
    read_idx,
)


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of `array`, written independently of the reader."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.float32): 0x0D}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_read_idx_round_trip(tmp_path, compress, dtype):
    rng = np.random.default_rng(1)
    array = (rng.integers(-300, 300, size=(3, 5, 4)) if dtype is not np.uint8
             else rng.integers(0, 256, size=(3, 5, 4))).astype(dtype)
    data = idx_bytes(array)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(data) if compress else data)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 5, 4)
    np.testing.assert_array_equal(back, array)
    back[0, 0, 0] = 1  # writable, not a view of the file's bytes


def test_read_idx_one_dimension_labels(tmp_path):
    labels = np.array([9, 0, 3, 3, 7], dtype=np.uint8)
    (tmp_path / "labels").write_bytes(idx_bytes(labels))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), labels)


def test_read_idx_errors(tmp_path):
    good = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    cases = {
        "png.idx": (b"\x89PNG\r\n\x1a\n" + good, "is not an IDX file"),
        "type.idx": (b"\0\0\x07\x03" + good[4:], "is not an IDX file"),
        "empty.idx": (b"", "is not an IDX file"),
        "short.idx": (good[:-5], "truncated: expected 40 bytes"),
        "header.idx": (good[:9], "truncated: expected a 16-byte header"),
        "long.idx": (good + b"\0\0", "2 bytes after the data"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PixelDataError, match=message):
            read_idx(tmp_path / name)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(good)[:-12])
    with pytest.raises(PixelDataError, match="damaged gzip"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "short.gz").write_bytes(gzip.compress(good[:-1]))
    with pytest.raises(PixelDataError, match="truncated: expected 40 bytes"):
        read_idx(tmp_path / "short.gz")
    with pytest.raises(PixelDataError, match="no such file"):
        read_idx(tmp_path / "missing")


def test_digits_shapes_and_values(digits):
    assert list(digits) == ["train", "val", "test"]
    sizes = {name: len(x) for name, (x, _) in digits.items()}
    assert sizes == {"train": 1350, "val": 150, "test": 297}
    for images, labels in digits.values():
        assert images.dtype == np.uint8 and images.shape[1:] == (8, 8)
        assert labels.dtype == np.int64 and labels.shape == (len(images),)
        assert images.max() == 16 and images.min() == 0
        assert set(np.unique(labels)) == set(range(10))


def test_digits_splits_disjoint_and_deterministic(digits):
    again = load_digits()
    for name in digits:
        np.testing.assert_array_equal(digits[name][0], again[name][0])
        np.testing.assert_array_equal(digits[name][1], again[name][1])
    from sklearn.datasets import load_digits as sk_load_digits

    full = sk_load_digits()
    perm = np.random.Generator(np.random.PCG64(0)).permutation(1797)
    rows = {"test": perm[:297], "val": perm[297:447], "train": perm[447:]}
    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(1797))  # disjoint, all used
    for name, (images, labels) in digits.items():
        np.testing.assert_array_equal(images, full.images[np.sort(rows[name])])
        np.testing.assert_array_equal(labels, full.target[np.sort(rows[name])])
    train = {x.tobytes() for x in digits["train"][0]}
    assert sum(x.tobytes() in train for x in digits["test"][0]) <= 3  # not a copy of training images


def test_datasets_table():
    assert set(DATASETS) == {"fashion", "digits"}
    assert DATASETS["digits"].loader is load_digits and DATASETS["digits"].max_value == 16
    assert DATASETS["digits"][1:] == (16, DIGIT_CLASSES, 8, 8)
    assert DATASETS["fashion"][1:] == (255, FASHION_CLASSES, 28, 28)
    assert FASHION_CLASSES[0] == "T-shirt/top" and FASHION_CLASSES[9] == "Ankle boot" and len(FASHION_CLASSES) == 10
    assert DIGIT_CLASSES == tuple("0123456789")


@pytest.mark.parametrize("levels,max_value", [(2, 255), (4, 16), (16, 255), (17, 16), (256, 255)])
def test_quantise_edges_and_monotone(levels, max_value):
    values = np.arange(max_value + 1, dtype=np.uint8)
    q = quantise(values, levels, max_value)
    assert q.dtype == np.uint8
    assert q[0] == 0 and q[-1] == levels - 1
    assert np.all(np.diff(q.astype(int)) >= 0)
    assert set(q.tolist()) == set(range(levels))  # every level is used
    counts = np.bincount(q, minlength=levels)
    assert counts.max() - counts.min() <= 1  # equal bins (as equal as the value count allows)
    shown = dequantise(q, levels)
    assert shown.dtype == np.uint8 and shown[0] == 0 and shown[-1] == 255
    assert np.all(np.diff(shown.astype(int)) >= 0)
    if levels == max_value + 1:
        np.testing.assert_array_equal(q, values)  # nothing lost


def test_quantise_rejects_bad_input():
    with pytest.raises(PixelDataError, match="outside 0..16"):
        quantise(np.array([0, 17]), 4, 16)
    with pytest.raises(PixelDataError, match="more than the 17 pixel values"):
        quantise(np.array([0, 16]), 32, 16)
    with pytest.raises(PixelDataError, match="integer pixel values"):
        quantise(np.array([0.5]), 4, 16)
    with pytest.raises(PixelDataError, match="from 2 to 256"):
        quantise(np.array([0]), 1, 16)
    with pytest.raises(PixelDataError, match="outside 0..3"):
        dequantise(np.array([4]), 4)


def test_pixel_ids_round_trip(digits):
    images = digits["val"][0]
    q = quantise(images, 4, 16)
    vocab = pixel_vocab(4)
    assert vocab.tokens == ["<pad>", "<unk>", "<s>", "</s>", "0", "1", "2", "3"]
    ids = images_to_ids(q)
    assert ids.dtype == np.int64 and ids.shape == (150, 64)
    assert ids.min() >= 4 and ids.max() <= 7
    assert ids[0, 9] == 4 + q[0, 1, 1]  # raster order: pixel (row 1, column 1) is the 10th
    assert vocab.decode(ids[0, :8].tolist()) == [str(v) for v in q[0, 0]]
    back = ids_to_images(ids, 8, 8)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, q)


def test_ids_to_images_rejects_specials_and_bad_shapes():
    ids = np.full((2, 6), 5, dtype=np.int64)
    ids[1, 4] = 3  # </s> where a pixel should be
    with pytest.raises(PixelDataError, match="image 1, pixel 4 is id 3, a special token"):
        ids_to_images(ids, 2, 3)
    with pytest.raises(PixelDataError, match=r"expects ids \[n, 6\]"):
        ids_to_images(np.full((2, 5), 5), 2, 3)
    with pytest.raises(PixelDataError, match=r"expects images \[n, height, width\]"):
        images_to_ids(np.zeros((4, 4), dtype=np.uint8))


def test_fashion_mnist_missing_folder(tmp_path):
    with pytest.raises(PixelDataError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")
    with pytest.raises(PixelDataError, match="train-images-idx3-ubyte.gz is missing"):
        load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not Path(FASHION_DIR).is_dir(),
                    reason=f"{FASHION_DIR} is absent (sudo apt-get install -y dataset-fashion-mnist)")
def test_fashion_mnist_splits():
    data = load_fashion_mnist()
    assert {name: x.shape for name, (x, _) in data.items()} == {
        "train": (55000, 28, 28), "val": (5000, 28, 28), "test": (10000, 28, 28)}
    for images, labels in data.values():
        assert images.dtype == np.uint8 and labels.dtype == np.int64 and labels.shape == (len(images),)
        assert labels.min() == 0 and labels.max() == 9
    assert np.bincount(data["test"][1]).tolist() == [1000] * 10  # the official test set is balanced
    assert data["train"][0].max() == 255 and data["train"][0].min() == 0
    assert data["train"][1][:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # the official first labels
