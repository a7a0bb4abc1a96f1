"""Training and the runtime see identical pixels, and the cached CNN features are the CNN's."""

import numpy as np
import torch

from edge_s2s.runtime.media.image import ImageSpec, preprocess
from edge_s2s.runtime.tasks.captioner import Captioner
from edge_s2s.train.caption.config import CaptionTrainConfig
from edge_s2s.train.caption.features import cache_key, region_features
from edge_s2s.train.caption.image_encoder import RegionEncoder
from edge_s2s.train.caption.loop import image_spec


def test_training_and_runtime_pixels_are_identical(caption_bundle, caption_run, shapes_data, tmp_path):
    from PIL import Image

    cfg = CaptionTrainConfig.from_dict(__import__("json").loads((caption_run / "config.json").read_text())["train"])
    train_spec = image_spec(cfg)
    cap = Captioner.load(caption_bundle)
    assert cap.spec == train_spec  # the manifest carries exactly the training spec
    # an RGBA, non-square PNG exercises compositing, resizing and cropping
    rgba = Image.open(shapes_data["images"] / "red_circle_0.jpg").convert("RGBA").resize((150, 90))
    rgba.putpixel((5, 5), (0, 0, 0, 0))
    rgba.save(tmp_path / "odd.png")
    for path in (shapes_data["images"] / "blue_triangle_1.jpg", tmp_path / "odd.png"):
        train_pixels = preprocess(path, train_spec)  # what caption_features feeds the CNN
        runtime_pixels, ok, bad = cap.pixels([path])
        assert not bad and ok == [0]
        assert train_pixels.dtype == runtime_pixels.dtype == np.float32
        assert np.array_equal(train_pixels, runtime_pixels[0])


def test_cached_features_are_the_cnn_output_and_are_reused(shapes_data, tmp_path):
    cnn = RegionEncoder().eval()
    spec = ImageSpec()
    imgs = sorted(shapes_data["images"].glob("green_*.jpg"))[:3]
    feats = region_features(cnn, imgs, spec, cache_dir=tmp_path, progress=False)
    assert feats.shape == (3, 49, 1280) and feats.dtype == torch.float16
    with torch.no_grad():
        direct = cnn(torch.from_numpy(np.stack([preprocess(p, spec) for p in imgs])))
    assert torch.allclose(feats.float(), direct, atol=2e-2, rtol=1e-2)  # float16 storage
    files = sorted(tmp_path.glob("*.npy"))
    assert [f.stem for f in files] == sorted(cache_key(p, spec) for p in imgs)
    # a second call reads the cache: poison one entry and see it come back
    poisoned = np.zeros((49, 1280), np.float16)
    np.save(tmp_path / f"{cache_key(imgs[0], spec)}.npy", poisoned)
    again = region_features(cnn, imgs, spec, cache_dir=tmp_path, progress=False)
    assert torch.count_nonzero(again[0]) == 0 and torch.equal(again[1:], feats[1:])
    # a different spec is a different key
    assert cache_key(imgs[0], ImageSpec(resize="squash")) != cache_key(imgs[0], spec)
