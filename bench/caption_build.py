"""What bench/bench_caption.py measures, rebuilt from a clean checkout under one work directory.

    WORK/data/       Debian's tuxpaint-stamps-default converted by the project's converter
                     (`train.caption.tuxpaint.convert`, seed 13 like the shipped model; one composite per
                     training stamp: the vocabulary counts a stamp group once, so it is the shipped 300
                     words, and the val/test splits are the shipped model's)
    WORK/features/   the frozen CNN's region features (cache)
    WORK/run/        the shipped model's architecture (models/captioner/manifest.json "model"), trained
                     for a tiny budget: speed does not depend on how well it is trained
    WORK/bundles/    its exports: fp32, int8 linear (shipped before issue 20's round), int8 static (the CNN
                     calibrated on training images: shipped now), int8 everything

Everything is reused when already there; a bundle is exported again when it was not made from the
run's current checkpoint. Every failure is a BenchError with one line that names the fix.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import fields
from pathlib import Path

STAMPS = Path("/usr/share/tuxpaint/stamps")
PACKAGE = "tuxpaint-stamps-default"
SEED = 13  # the converter seed of the shipped model (README "Captioner quality")
# bundle name -> exporter's int8=
KINDS = {"fp32": "none", "int8-linear": "linear", "int8-static": "static", "int8-all": "all"}


class BenchError(Exception):
    """Something the benchmark needs is missing or failed (one line, with the fix)."""


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def ensure_stamps(stamps: Path = STAMPS) -> None:
    """Install Debian's stamps when missing and we are root; else BenchError with the command."""
    if stamps.is_dir():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError(f"{stamps} is missing: sudo apt-get install -y {PACKAGE}")
    log(f"apt-get install -y {PACKAGE}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", PACKAGE]
    if subprocess.run(install, check=False, capture_output=True, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True, env=env)
        done = subprocess.run(install, check=False, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BenchError(f"apt-get install -y {PACKAGE} failed ({last})")
    if not stamps.is_dir():
        raise BenchError(f"{PACKAGE} is installed but {stamps} is still missing")


def ensure_data(data: Path, stamps: Path = STAMPS) -> Path:
    """The converted data set's Karpathy JSON (converted when missing)."""
    karpathy = data / "dataset_tuxpaint.json"
    if karpathy.is_file():
        return karpathy
    ensure_stamps(stamps)
    from edge_s2s.runtime.errors import EdgeS2SError
    from edge_s2s.train.caption import tuxpaint

    if any(stamps.rglob("*.svg")) and (err := tuxpaint.svg_rasteriser_error()):
        raise BenchError(err)
    t0 = time.perf_counter()
    try:
        report = tuxpaint.convert(stamps, data, seed=SEED, train_variants=1, size=256, workers=os.cpu_count() or 1)
    except EdgeS2SError as e:
        raise BenchError(str(e)) from None
    n = {k: v["images"] for k, v in report.counts.items()}
    log(f"converted {stamps} -> {data}: {n} images in {time.perf_counter() - t0:.0f} s")
    return karpathy


def split_images(data: Path, split: str = "test") -> list[Path]:
    """The JPEGs of one split of the converted data, in file order."""
    from edge_s2s.train.caption.data import load_captions

    return [i.image for i in load_captions(data / "dataset_tuxpaint.json", data) if i.split == split]


def shipped_kind() -> str:
    """The KINDS name of what models/captioner ships (its manifest's model.int8)."""
    parts = shipped_model().get("int8", "none")
    return next((k for k, v in KINDS.items() if v == parts), "int8-linear")


def shipped_model() -> dict:
    """The "model" section of the shipped captioner's manifest (sizes, attention, int8...)."""
    from edge_s2s.runtime.bundle import shipped_bundle

    path = shipped_bundle("captioner") / "manifest.json"
    if not path.is_file():
        raise BenchError(f"{path} is missing: the shipped captioner defines the architecture measured "
                         "(git checkout models/captioner)")
    return json.loads(path.read_text())["model"]


def ensure_run(run: Path, data: Path, epochs: int, features: Path, stamps: Path = STAMPS) -> Path:
    """A caption run of the shipped architecture under `run` (trained when it has no best.pt)."""
    if (run / "best.pt").is_file():
        return run
    from edge_s2s.train.caption.config import CaptionModelConfig, CaptionTrainConfig
    from edge_s2s.train.caption.loop import train_captioner

    karpathy = ensure_data(data, stamps)
    shipped = shipped_model()
    model = CaptionModelConfig(**{f.name: shipped[f.name] for f in fields(CaptionModelConfig) if f.name in shipped})
    cfg = CaptionTrainConfig(captions=str(karpathy), images=str(data), out_dir=str(run), model=model,
                             epochs=epochs, seed=1, val_max=0)
    if run.exists():  # an interrupted earlier build
        shutil.rmtree(run)
    t0 = time.perf_counter()
    log(f"training the shipped architecture ({model.attention} attention, {model.cnn} frozen, "
        f"dec_hidden {model.dec_hidden}) for {epochs} epoch(s) -> {run}")
    train_captioner(cfg, progress=False, cache_dir=features)
    vocab = json.loads((run / "config.json").read_text())["vocab_size"]
    note = "" if vocab == shipped.get("vocab_size") else f" (the shipped model has {shipped.get('vocab_size')})"
    log(f"trained in {time.perf_counter() - t0:.0f} s, vocabulary {vocab}{note}")
    return run


def bundle_source(bundle: Path) -> tuple[str, str]:
    """(int8 kind, source checkpoint sha256) of a bundle, from its manifest."""
    m = json.loads((bundle / "manifest.json").read_text())
    return str(m.get("model", {}).get("int8", "none")), str(m.get("source_checkpoint_sha256", ""))


def ensure_bundle(run: Path, out: Path, int8: str) -> Path:
    """`run`'s best checkpoint exported with `int8` at `out` (reused when it already is)."""
    from edge_s2s.runtime.bundle import sha256_file

    sha = sha256_file(run / "best.pt")
    if (out / "manifest.json").is_file() and bundle_source(out) == (int8, sha):
        return out
    from edge_s2s.export.caption import export_caption_bundle
    from edge_s2s.runtime.errors import EdgeS2SError

    t0 = time.perf_counter()
    try:
        export_caption_bundle(run, out, int8=int8)
    except EdgeS2SError as e:
        raise BenchError(f"export of {run} (int8={int8}) failed: {e}") from None
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 1e6
    log(f"exported int8={int8} -> {out} ({size:.1f} MB) in {time.perf_counter() - t0:.0f} s")
    return out
