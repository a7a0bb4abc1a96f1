"""Fixtures shared across test folders: a tiny captioner trained on generated shapes,
its run directory and its exported bundle (built once per session)."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "train"))

from caption_toy import write_shapes  # noqa: E402


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="session")
def caption_cache(tmp_path_factory):
    """CNN feature cache for the session (never the user's ~/.cache)."""
    path = tmp_path_factory.mktemp("feature-cache")
    os.environ["EDGE_S2S_CACHE"] = str(path)
    return path


def tiny_caption_config(shapes_data, out_dir, **model):
    from edge_s2s.train.caption_config import CaptionModelConfig, CaptionTrainConfig

    m = dict(emb_dim=32, dec_hidden=64, region_dim=64, att_dim=32, dropout=0.0)
    m.update(model)
    return CaptionTrainConfig(captions=str(shapes_data["karpathy"]), images=str(shapes_data["images"]),
                              out_dir=str(out_dir), model=CaptionModelConfig(**m), epochs=6, batch_size=8, lr=5e-3,
                              vocab_min_count=1, max_caption_length=8, val_max=12)


@pytest.fixture(scope="session")
def caption_run(tmp_path_factory, shapes_data, caption_cache):
    from edge_s2s.train.caption_loop import train_captioner

    out = tmp_path_factory.mktemp("caption-run") / "run"
    return train_captioner(tiny_caption_config(shapes_data, out, doubly_stochastic=0.1), progress=False,
                           cache_dir=caption_cache)


@pytest.fixture(scope="session")
def caption_bundle(tmp_path_factory, caption_run):
    from edge_s2s.export.caption_export import export_caption_bundle

    out = tmp_path_factory.mktemp("caption-bundle") / "bundle"
    export_caption_bundle(caption_run, out)
    return out
