"""Anchor Promotion Module (paper §3.1): per anchor an "is positive" logit and 4 refinement
deltas, from two 3x3 convs on a decoder level. Either branch can be switched off (Table 2).
With ``light`` each 3x3 conv is depthwise 3x3 (BN, ReLU) then a 1x1 conv (SSDLite's heads)."""
from __future__ import annotations

from torch import Tensor, nn

from .layers import depthwise_bn_relu


class APM(nn.Module):
    def __init__(self, channels: int, num_anchors: int, *, use_score: bool, use_reg: bool, light: bool = False) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        k, p = (1, 0) if light else (3, 1)
        self.score_dw = depthwise_bn_relu(channels) if light and use_score else None
        self.reg_dw = depthwise_bn_relu(channels) if light and use_reg else None
        self.score = nn.Conv2d(channels, num_anchors, k, padding=p) if use_score else None
        self.reg = nn.Conv2d(channels, 4 * num_anchors, k, padding=p) if use_reg else None

    def forward(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Returns (score map (B, A, H, W) or None, regression map (B, 4A, H, W) or None); the
        regression channels of anchor a are 4a..4a+3 = (dx, dy, dw, dh)."""
        s = r = None
        if self.score is not None:
            s = self.score(self.score_dw(x) if self.score_dw is not None else x)
        if self.reg is not None:
            r = self.reg(self.reg_dw(x) if self.reg_dw is not None else x)
        return s, r
