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
