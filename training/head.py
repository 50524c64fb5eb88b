"""Detection head of one level (paper §3.3): CBR3-256 → FAM → sibling class and box convs.

With ``light`` (SSDLite-style, for mobile backbones) the CBR3 is depthwise-separable and each
prediction conv is a depthwise 3x3 (BN, ReLU) followed by a 1x1 conv; ``cls`` and ``box`` stay
the convs that predict (their biases carry the priors).
"""
from __future__ import annotations

from torch import Tensor, nn

from .fam import FAM
from .layers import ConvBNReLU, SepConvBNReLU, depthwise_bn_relu


class DetectionHead(nn.Module):
    def __init__(
        self, channels: int, num_anchors: int, num_classes: int, *, fam_mode: str | None, fam_detach: bool = False,
        light: bool = False, fam_groups: int = 1, fam_channels: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.conv = SepConvBNReLU(channels, channels) if light else ConvBNReLU(channels, channels, 3, padding=1)
        self.fam = (
            FAM(channels, num_anchors, fam_mode, detach=fam_detach, groups=fam_groups, mid=fam_channels) if fam_mode is not None else None
        )
        k, p = (1, 0) if light else (3, 1)
        self.cls_dw = depthwise_bn_relu(channels) if light else None
        self.box_dw = depthwise_bn_relu(channels) if light else None
        self.cls = nn.Conv2d(channels, num_anchors * (num_classes + 1), k, padding=p)
        self.box = nn.Conv2d(channels, num_anchors * 4, k, padding=p)

    def forward(self, x: Tensor, apm_reg: Tensor | None) -> tuple[Tensor, Tensor]:
        x = self.conv(x)
        if self.fam is not None:
            x = self.fam(x, apm_reg)
        if self.cls_dw is None:
            return self.cls(x), self.box(x)
        return self.cls(self.cls_dw(x)), self.box(self.box_dw(x))
