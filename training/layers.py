"""Building blocks shared by the encoders, the decoder and the heads."""
from __future__ import annotations

from torch import nn


class ConvBNReLU(nn.Sequential):
    """CBRk-c in the spec's notation: Conv(k×k, ``cout``) → BatchNorm → ReLU.

    Without ``bn`` the conv carries a bias instead. A plain ``nn.Sequential`` underneath, so the
    parameters keep the names ``0.weight``, ``1.running_mean`` ... that checkpoints hold.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, *, bn: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, padding, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SepConvBNReLU(nn.Sequential):
    """The light head's 3x3 conv (MobileNet/SSDLite): depthwise 3x3 → BN → ReLU → pointwise 1x1
    → BN → ReLU, about 9·cout/(9 + cout) times fewer multiply-adds than :class:`ConvBNReLU`."""

    def __init__(self, cin: int, cout: int, stride: int = 1, padding: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, 3, stride, padding, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )  # fmt: skip


def depthwise_bn_relu(channels: int) -> nn.Sequential:
    """The depthwise half of a separable prediction conv (SSDLite's heads): 3x3 per channel → BN
    → ReLU; a 1x1 conv with bias predicts from it."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
    )
