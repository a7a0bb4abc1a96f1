"""Fixtures shared across test folders (helpers/ holds their toy data and models): the toy translation pairs, a tiny captioner trained on generated shapes,
its run directory and its exported bundle (built once per session)."""

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "helpers"))  # toy data and models shared by the tests
# the runtime's cache (checksums, optimised graphs) and the feature cache: never the user's ~/.cache
os.environ.setdefault("EDGE_S2S_CACHE", tempfile.mkdtemp(prefix="edge-s2s-test-cache-"))

from caption_toy import tiny_caption_config, write_shapes  # noqa: E402
from toy import write_toy_tsv  # noqa: E402


@pytest.fixture(scope="session")
def toy_tsv(tmp_path_factory):
    """~240 generated pairs of the synthetic reverse-and-map task (train/export/CLI tests)."""
    return write_toy_tsv(tmp_path_factory.mktemp("data") / "toy.tsv")


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="session")
def caption_cache(tmp_path_factory):
    """CNN feature cache for the session (never the user's ~/.cache)."""
    path = tmp_path_factory.mktemp("feature-cache")
    os.environ["EDGE_S2S_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def caption_run(tmp_path_factory, shapes_data, caption_cache):
    from edge_s2s.train.caption.loop import train_captioner

    out = tmp_path_factory.mktemp("caption-run") / "run"
    return train_captioner(tiny_caption_config(shapes_data, out, doubly_stochastic=0.1), progress=False,
                           cache_dir=caption_cache)


@pytest.fixture(scope="session")
def caption_bundle(tmp_path_factory, caption_run):
    from edge_s2s.export.caption import export_caption_bundle

    out = tmp_path_factory.mktemp("caption-bundle") / "bundle"
    export_caption_bundle(caption_run, out)
    return out


# --- generators: a character LM on Genesis 1-3 and pixel models on scikit-learn digits ---

KJV_FIXTURE = Path(__file__).parent / "data" / "kjv-genesis-1-3.txt"


def tiny_generator_config(out_dir, data="kjv", train=None, **model):
    from edge_s2s.train.generate.config import GeneratorConfig, GeneratorTrainConfig

    if data == "kjv":
        m = dict(unit="char", emb_dim=16, hidden=48, blocked_ids=[0, 2])
        t = dict(corpus=str(KJV_FIXTURE), epochs=4, batch_size=16, lr=1e-2)
    else:
        m = dict(unit="pixel", emb_dim=8, hidden=32, height=8, width=8, blocked_ids=[0, 1, 2, 3])
        t = dict(levels=4, epochs=2, batch_size=64, lr=1e-2, max_train=640)
    m.update(model)
    t.update(train or {})
    return GeneratorTrainConfig(data=data, out_dir=str(out_dir), model=GeneratorConfig(**m), **t)


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory):
    from edge_s2s.train.generate.loop import train_generator

    return train_generator(tiny_generator_config(tmp_path_factory.mktemp("lm-run") / "run"), progress=False)


@pytest.fixture(scope="session")
def lm_bundle(tmp_path_factory, lm_run):
    from edge_s2s.export.generate import export_generator_bundle

    out = tmp_path_factory.mktemp("lm-bundle") / "bundle"
    export_generator_bundle(lm_run, out)
    return out


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """Conditional raster-LSTM pixel model on the 8x8 digits."""
    from edge_s2s.train.generate.loop import train_generator

    cfg = tiny_generator_config(tmp_path_factory.mktemp("digits-run") / "run", data="digits",
                                train={"conditional": True}, n_conditions=10, cond_dim=8)
    return train_generator(cfg, progress=False)


@pytest.fixture(scope="session")
def digits_bundle(tmp_path_factory, digits_run):
    from edge_s2s.export.generate import export_generator_bundle

    out = tmp_path_factory.mktemp("digits-bundle") / "bundle"
    export_generator_bundle(digits_run, out)
    return out


@pytest.fixture(scope="session")
def grid_run(tmp_path_factory):
    """Unconditional 2-D LSTM pixel model on the 8x8 digits."""
    from edge_s2s.train.generate.loop import train_generator

    cfg = tiny_generator_config(tmp_path_factory.mktemp("grid-run") / "run", data="digits", arch="grid")
    return train_generator(cfg, progress=False)


@pytest.fixture(scope="session")
def grid_bundle(tmp_path_factory, grid_run):
    from edge_s2s.export.generate import export_generator_bundle

    out = tmp_path_factory.mktemp("grid-bundle") / "bundle"
    export_generator_bundle(grid_run, out)
    return out


# --- memory networks: a 2-hop MemN2N on generated bAbI-task-1-like stories (tests/helpers/memory_stories.py) ---

MEMN2N_MEMORY = 10  # sentences the test network keeps: small, so long-story truncation is cheap to test


@pytest.fixture(scope="session")
def babi_root(tmp_path_factory):
    """A bAbI data root (en/qa1_*) of generated stories: 800 training, 200 test questions."""
    from memory_stories import write_babi_root

    return write_babi_root(tmp_path_factory.mktemp("babi"), n_train=800, n_test=200, seed=0)


@pytest.fixture(scope="session")
def memn2n_run(tmp_path_factory, babi_root):
    """`train babi` on the generated task 1 (a few seconds on one core)."""
    from edge_s2s.train.memn2n.loop import BabiRunConfig, train_babi
    from edge_s2s.train.memn2n.model import MemN2NConfig

    cfg = BabiRunConfig(tasks=[1], data_root=str(babi_root), out_dir=str(tmp_path_factory.mktemp("memn2n-run") / "run"),
                        seed=1, model=MemN2NConfig(hops=2, memory_size=MEMN2N_MEMORY, epochs=20, ls_max_epochs=10))
    return train_babi(cfg)[0]


@pytest.fixture(scope="session")
def memn2n_bundle(tmp_path_factory, memn2n_run):
    from edge_s2s.export.memn2n import export_memn2n_bundle

    out = tmp_path_factory.mktemp("memn2n-bundle") / "bundle"
    export_memn2n_bundle(memn2n_run, out)
    return out
