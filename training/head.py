"""Detection head of one level (paper §3.3): CBR3-256 → FAM → sibling class and box convs."""
from __future__ import annotations

from torch import Tensor, nn

from .fam import FAM
from .layers import ConvBNReLU


class DetectionHead(nn.Module):
    def __init__(
        self, channels: int, num_anchors: int, num_classes: int, *, fam_mode: str | None, fam_detach: bool = False
    ) -> None:
        super().__init__()
        self.conv = ConvBNReLU(channels, channels, 3, padding=1)
        self.fam = FAM(channels, num_anchors, fam_mode, detach=fam_detach) if fam_mode is not None else None
        self.cls = nn.Conv2d(channels, num_anchors * (num_classes + 1), 3, padding=1)
        self.box = nn.Conv2d(channels, num_anchors * 4, 3, padding=1)

    def forward(self, x: Tensor, apm_reg: Tensor | None) -> tuple[Tensor, Tensor]:
        x = self.conv(x)
        if self.fam is not None:
            x = self.fam(x, apm_reg)
        return self.cls(x), self.box(x)
