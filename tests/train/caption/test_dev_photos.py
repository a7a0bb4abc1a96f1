"""The captioner's development photos (docs/real-photos-dev.tsv) stay apart from the real-photo check
(docs/real-photos.tsv), and the default's decoding prior is chosen on them under the clip-art guard."""

import importlib
import sys

from paths import REPO

sys.path.insert(0, str(REPO / "scripts"))
build_real_photos = importlib.import_module("build_real_photos")
train_default_captioner = importlib.import_module("train_default_captioner")


def test_development_photos_share_nothing_with_the_check():
    check = build_real_photos.read_rows(REPO / "docs" / "real-photos.tsv")
    dev = build_real_photos.read_rows(build_real_photos.DEV_LIST)
    assert len(dev) >= 100 and len({r.id for r in dev}) == len(dev)
    for field in ("id", "path", "sha256"):
        assert not {getattr(r, field) for r in dev} & {getattr(r, field) for r in check}, field
    for r in dev:
        assert r.main and all(n.strip() == n and n for n in r.main.split("|")), r.id
        assert r.caption and r.licence and len(r.sha256) == 64, r.id


def test_pointer_prior_names_the_most_within_the_guard_and_ties_go_to_the_smallest():
    choose = train_default_captioner.choose_pointer_prior
    val = {0.0: 0.60, 1.0: 0.58, 2.0: 0.50, 4.0: 0.40}
    assert choose(val, {0.0: 60, 1.0: 66, 2.0: 70, 4.0: 71}) == 1.0  # 2 and 4 cost clip art > 0.05
    assert choose(val, {0.0: 60, 1.0: 60, 2.0: 60, 4.0: 60}) == 0.0
    assert choose({0.0: 0.6, 0.5: 0.6, 1.0: 0.6}, {0.0: 60, 0.5: 67, 1.0: 67}) == 0.5
