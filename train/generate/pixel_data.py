"""Images as token sequences: the IDX reader, Fashion-MNIST, scikit-learn's digits, pixel tokens.

A pixel generator sees an image as a sentence: each pixel is quantised to one of `levels`
grey levels and the levels are read row by row (raster order). Level q is token id 4 + q,
after the four specials of `runtime.text` (<pad> <unk> <s> </s>), so an image bundle's
tokens.txt is an ordinary vocabulary.

Data sets:
* Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): 70,000 28x28 grey images of clothing in
  10 classes. Copyright 2017 Zalando SE, MIT licence. Debian ships it as
  `dataset-fashion-mnist` (the four original IDX .gz files in /usr/share/datasets/fashion-mnist;
  see /usr/share/doc/dataset-fashion-mnist/copyright). Val is the last 5,000 of the
  official training set, so the official test set stays the test set.
* digits: scikit-learn's copy of the test part of UCI's "Optical Recognition of Handwritten
  Digits" (Alpaydin & Kaynak, 1998; CC BY 4.0): 1,797 8x8 images, pixels 0..16. It lies
  inside the scikit-learn wheel; nothing is downloaded. No official split: a fixed
  permutation (PCG64, seed 0) gives 297 test, 150 val and the rest train.
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ...runtime.errors import EdgeS2SError
from ...runtime.text import SPECIALS, Vocab

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_INSTALL = "sudo apt-get install -y dataset-fashion-mnist"
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_VAL = 5_000  # the last images of the official 60,000 training images
DIGIT_CLASSES = tuple(str(d) for d in range(10))
DIGITS_TEST, DIGITS_VAL, DIGITS_SEED = 297, 150, 0
PIXEL_OFFSET = len(SPECIALS)  # level q is token id PIXEL_OFFSET + q

Splits = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (images uint8 [n, H, W], labels int64 [n])

# IDX type byte -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


class PixelDataError(EdgeS2SError, ValueError):
    """An image data file or data set is missing or malformed (message names the fix)."""


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzip-compressed or plain: detected from the first bytes.

    Header: two zero bytes, a type byte, the number of dimensions, then each dimension as a
    big-endian uint32; the data follows, big-endian, and must fill the file exactly.
    Returns a writable array in native byte order.
    """
    path = Path(path)
    if not path.is_file():
        raise PixelDataError(f"{path}: no such file: pass an IDX file (such as train-images-idx3-ubyte.gz)")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise PixelDataError(f"{path}: a damaged gzip file ({e}): download or reinstall it again") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise PixelDataError(f"{path} is not an IDX file (it starts with {raw[:4].hex() or 'nothing'}, "
                             "expected 0000 then a type byte and the number of dimensions)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise PixelDataError(f"{path}: truncated: expected a {header}-byte header, found {len(raw)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) < expected:
        raise PixelDataError(f"{path}: truncated: expected {expected} bytes for shape {list(dims)}, "
                             f"found {len(raw)}: download or reinstall it again")
    if len(raw) > expected:
        raise PixelDataError(f"{path}: {len(raw) - expected} bytes after the data of shape {list(dims)}: "
                             "not a single IDX array, check the file")
    data = np.frombuffer(raw, dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))  # a copy: writable, native order


def _idx_in(directory: Path, stem: str) -> np.ndarray:
    """`stem` or `stem.gz` in directory (the original files are gzipped; unzipped also works)."""
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return read_idx(directory / name)
    raise PixelDataError(f"{directory}: {stem}.gz is missing: reinstall with {FASHION_INSTALL}")


def _images_labels(directory: Path, prefix: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    images = _idx_in(directory, f"{prefix}-images-idx3-ubyte")
    labels = _idx_in(directory, f"{prefix}-labels-idx1-ubyte")
    if images.shape != (n, 28, 28) or images.dtype != np.uint8:
        raise PixelDataError(f"{directory}: {prefix} images are {images.dtype} {list(images.shape)}, "
                             f"expected uint8 [{n}, 28, 28]: reinstall with {FASHION_INSTALL}")
    if labels.shape != (n,) or labels.dtype != np.uint8 or labels.max() >= len(FASHION_CLASSES):
        raise PixelDataError(f"{directory}: {prefix} labels are not {n} class numbers 0-9: "
                             f"reinstall with {FASHION_INSTALL}")
    return images, labels.astype(np.int64)


def load_fashion_mnist(directory: str | Path = FASHION_DIR) -> Splits:
    """Fashion-MNIST: train = the first 55,000 official training images, val = the last
    5,000, test = the official 10,000. Images uint8 [n, 28, 28] (0 = background), labels int64."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PixelDataError(f"{directory}: no Fashion-MNIST folder: {FASHION_INSTALL}, or pass the folder "
                             "holding train-images-idx3-ubyte.gz and the other three files")
    train_x, train_y = _images_labels(directory, "train", 60_000)
    test_x, test_y = _images_labels(directory, "t10k", 10_000)
    cut = len(train_x) - FASHION_VAL
    return {"train": (train_x[:cut], train_y[:cut]), "val": (train_x[cut:], train_y[cut:]),
            "test": (test_x, test_y)}


def load_digits() -> Splits:
    """scikit-learn's 1,797 8x8 digits: images uint8 0..16 [n, 8, 8], labels int64 0..9.

    Split by a fixed permutation (numpy PCG64, seed 0): its first 297 images are test,
    the next 150 val, the rest train; each split keeps the original order.
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise PixelDataError("the digits data set needs scikit-learn: pip install scikit-learn") from None
    bunch = sk_load_digits()
    values = np.asarray(bunch.images)
    if values.shape[1:] != (8, 8) or values.min() < 0 or values.max() > 16 or not np.all(values == np.round(values)):
        raise PixelDataError("scikit-learn's digits are not 8x8 integer images 0..16: reinstall scikit-learn")
    images = values.astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    perm = np.random.Generator(np.random.PCG64(DIGITS_SEED)).permutation(len(images))
    parts = {"test": perm[:DIGITS_TEST], "val": perm[DIGITS_TEST : DIGITS_TEST + DIGITS_VAL],
             "train": perm[DIGITS_TEST + DIGITS_VAL :]}
    return {name: (images[np.sort(parts[name])], labels[np.sort(parts[name])]) for name in ("train", "val", "test")}


class PixelDataset(NamedTuple):
    loader: Callable[[], Splits]
    max_value: int  # the brightest pixel value
    classes: tuple[str, ...]
    height: int
    width: int


DATASETS: dict[str, PixelDataset] = {
    "fashion": PixelDataset(load_fashion_mnist, 255, FASHION_CLASSES, 28, 28),
    "digits": PixelDataset(load_digits, 16, DIGIT_CLASSES, 8, 8),
}


def _check_levels(levels: int) -> None:
    if not isinstance(levels, (int, np.integer)) or not 2 <= levels <= 256:
        raise PixelDataError(f"levels must be an integer from 2 to 256, got {levels!r}")


def quantise(images: np.ndarray, levels: int, max_value: int) -> np.ndarray:
    """Pixel values 0..max_value -> levels 0..levels-1 (uint8), in equal bins of values.

    Level = value * levels // (max_value + 1): each level covers the same number of the
    max_value + 1 possible values (levels 16 of 0..255: 16 values each, value >> 4), 0 is
    level 0 and max_value is level levels-1. levels = max_value + 1 keeps every value.
    """
    _check_levels(levels)
    x = np.asarray(images)
    if not np.issubdtype(x.dtype, np.integer):
        raise PixelDataError(f"quantise expects integer pixel values, got {x.dtype}: convert with .astype(np.uint8)")
    if levels > max_value + 1:
        raise PixelDataError(f"levels={levels} is more than the {max_value + 1} pixel values 0..{max_value}: "
                             f"use levels <= {max_value + 1}")
    if x.size and (x.min() < 0 or x.max() > max_value):
        raise PixelDataError(f"pixel values run {x.min()}..{x.max()}, outside 0..{max_value}: pass the right max_value")
    return (x.astype(np.int64) * levels // (max_value + 1)).astype(np.uint8)


def dequantise(q: np.ndarray, levels: int) -> np.ndarray:
    """Levels 0..levels-1 -> grey values 0..255 (uint8) for display: 0 -> 0, levels-1 -> 255, evenly between."""
    _check_levels(levels)
    q = np.asarray(q)
    if q.size and (q.min() < 0 or q.max() >= levels):
        raise PixelDataError(f"levels run {q.min()}..{q.max()}, outside 0..{levels - 1}: pass the levels used to quantise")
    q64 = q.astype(np.int64)
    return ((q64 * 510 + (levels - 1)) // (2 * (levels - 1))).astype(np.uint8)  # round(q * 255 / (levels-1))


def pixel_vocab(levels: int) -> Vocab:
    """The specials, then the levels as tokens "0", "1", ...: level q is id 4 + q."""
    _check_levels(levels)
    return Vocab(list(SPECIALS) + [str(q) for q in range(levels)])


def images_to_ids(q_images: np.ndarray) -> np.ndarray:
    """Quantised images [n, H, W] -> token ids int64 [n, H*W], row by row (raster order)."""
    q = np.asarray(q_images)
    if q.ndim != 3:
        raise PixelDataError(f"images_to_ids expects images [n, height, width], got shape {list(q.shape)}")
    if q.size and q.min() < 0:
        raise PixelDataError(f"images_to_ids: level {q.min()} is negative: pass quantised images (quantise first)")
    return q.reshape(len(q), -1).astype(np.int64) + PIXEL_OFFSET


def ids_to_images(ids: np.ndarray, height: int, width: int) -> np.ndarray:
    """Token ids [n, H*W] in raster order -> levels uint8 [n, H, W]; a special id is an error."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[1] != height * width:
        raise PixelDataError(f"ids_to_images expects ids [n, {height * width}] for {height}x{width} images, "
                             f"got shape {list(ids.shape)}")
    if ids.size and ids.min() < PIXEL_OFFSET:
        i, p = np.argwhere(ids < PIXEL_OFFSET)[0]
        raise PixelDataError(f"ids_to_images: image {i}, pixel {p} is id {ids[i, p]}, a special token, not a pixel "
                             "level: decode exactly height*width pixels with the specials blocked")
    if ids.size and ids.max() > PIXEL_OFFSET + 255:
        raise PixelDataError(f"ids_to_images: id {ids.max()} is above the largest pixel id {PIXEL_OFFSET + 255}")
    return (ids - PIXEL_OFFSET).astype(np.uint8).reshape(len(ids), height, width)
