"""Frozen-CNN region features, computed once per image and cached on disk.

With the CNN frozen (the default) every epoch would push the same pixels through the same
network; instead each image's [49, 1280] regions are computed once, through exactly the
runtime's preprocessing (`runtime.image.preprocess`), and stored as float16 `.npy` files
keyed by the image bytes, the preprocessing spec and the CNN weights. Runs with different
decoders (baseline, attention, regulariser) share the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ...runtime.errors import InputError
from ...runtime.media.image import ImageSpec, preprocess
from ..core.checkpoint import atomic_write_bytes
from ..core.errors import DataError
from .image_encoder import FEATURE_DIM, REGIONS

CNN_ID = "efficientnet-lite0-57934424"  # the weight file's name: part of every cache key


def default_cache_dir() -> Path:
    """$EDGE_S2S_CACHE/features, else ~/.cache/edge-s2s/features."""
    root = os.environ.get("EDGE_S2S_CACHE") or Path.home() / ".cache" / "edge-s2s"
    return Path(root) / "features"


def cache_key(image: Path, spec: ImageSpec) -> str:
    h = hashlib.sha256()
    h.update(Path(image).read_bytes())
    h.update(json.dumps(spec.to_manifest(), sort_keys=True).encode())
    h.update(CNN_ID.encode())
    return h.hexdigest()[:32]


def _save_atomic(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, arr)
    atomic_write_bytes(path, buf.getvalue())


@torch.no_grad()
def region_features(cnn: torch.nn.Module, images: list[Path], spec: ImageSpec, cache_dir: Path | None = None,
                    batch_size: int = 16, progress: bool = True) -> torch.Tensor:
    """float16 [len(images), 49, 1280]: the CNN regions of every image, from cache when there.

    A training image that cannot be read raises DataError naming it (training data must be
    clean; the runtime's per-file tolerance is for users' photos, not for datasets).
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    out = torch.empty(len(images), REGIONS, FEATURE_DIM, dtype=torch.float16)
    todo: list[tuple[int, Path]] = []
    for i, img in enumerate(images):
        p = cache / f"{cache_key(img, spec)}.npy"
        if p.is_file():
            try:
                arr = np.load(p)
                if arr.shape == (REGIONS, FEATURE_DIM):
                    out[i] = torch.from_numpy(arr)
                    continue
            except (OSError, ValueError):
                pass  # a damaged cache entry is recomputed
        todo.append((i, p))
    if not todo:
        return out
    was = cnn.training
    cnn.eval()
    bar = tqdm(total=len(todo), desc="CNN features", disable=not progress, leave=False, dynamic_ncols=True)
    try:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            pix = []
            for i, _ in chunk:
                try:
                    pix.append(preprocess(images[i], spec))
                except InputError as e:
                    raise DataError(f"training image {images[i]} cannot be used ({e}): fix or remove it from the "
                                    "caption file") from None
            feats = cnn(torch.from_numpy(np.stack(pix))).to(torch.float16)
            for (i, path), f in zip(chunk, feats):
                out[i] = f
                _save_atomic(path, f.numpy())
            bar.update(len(chunk))
    finally:
        bar.close()
        cnn.train(was)
    return out
