"""Encoder-decoder with skip connections (paper §3, spec "Decoder").

Lateral on each E_l: CBR1-256. Top-down: D_{l+1} → bilinear upsample to E_l's size → CBR1-256 →
add lateral → CBR3-256 = D_l. The top level D_{L-1} = CBR3(lateral(E_{L-1})); the extra level D_L
is a stride-2 CBR3 of D_{L-1}. With ``light`` every CBR3 is depthwise-separable
(:class:`~training.layers.SepConvBNReLU`, SSDLite's choice for mobile backbones).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import ConvBNReLU, SepConvBNReLU


class Decoder(nn.Module):
    def __init__(self, in_channels: list[int], channels: int, last_padding: int, *, light: bool = False) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(ConvBNReLU(c, channels, 1) for c in in_channels)
        # one "upsample → CBR1" per level that receives a top-down signal (all but the top)
        self.top_down = nn.ModuleList(ConvBNReLU(channels, channels, 1) for _ in in_channels[:-1])
        if light:
            self.smooth = nn.ModuleList(SepConvBNReLU(channels, channels) for _ in in_channels)
            self.down = SepConvBNReLU(channels, channels, stride=2, padding=last_padding)
        else:
            self.smooth = nn.ModuleList(ConvBNReLU(channels, channels, 3, padding=1) for _ in in_channels)
            self.down = ConvBNReLU(channels, channels, 3, stride=2, padding=last_padding)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        n = len(feats)
        x = self.smooth[-1](self.lateral[-1](feats[-1]))
        outs = [x]
        for i in range(n - 2, -1, -1):
            up = F.interpolate(x, size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.smooth[i](self.top_down[i](up) + self.lateral[i](feats[i]))
            outs.append(x)
        outs.reverse()
        outs.append(self.down(outs[-1]))
        return outs
