"""Anchor Promotion Module (paper §3.1): per anchor an "is positive" logit and 4 refinement
deltas, from two 3x3 convs on a decoder level. Either branch can be switched off (Table 2)."""
from __future__ import annotations

from torch import Tensor, nn


class APM(nn.Module):
    def __init__(self, channels: int, num_anchors: int, *, use_score: bool, use_reg: bool) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        self.score = nn.Conv2d(channels, num_anchors, 3, padding=1) if use_score else None
        self.reg = nn.Conv2d(channels, 4 * num_anchors, 3, padding=1) if use_reg else None

    def forward(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Returns (score map (B, A, H, W) or None, regression map (B, 4A, H, W) or None); the
        regression channels of anchor a are 4a..4a+3 = (dx, dy, dw, dh)."""
        s = self.score(x) if self.score is not None else None
        r = self.reg(x) if self.reg is not None else None
        return s, r
