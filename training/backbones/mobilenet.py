"""Light encoders from torchvision's mobile networks: MobileNetV3-Large and MobileNetV2.

``features`` is torchvision's own ``mobilenet_v3_large(weights=None).features`` /
``mobilenet_v2(weights=None).features`` (cut after the last tap), so module names, and hence
the ImageNet weight files, are torchvision's. The taps are the outputs of the last block at
strides 8, 16 and 32 (MobileNetV3-Large: blocks 6, 12 and the 960-channel 1x1 conv 16;
MobileNetV2: blocks 6, 13 and the 1280-channel conv 18), then the same stride-2 extra stages as
the other encoders, so the decoder, APM, FAM and head do not change.

``mobilenet_v3_large_s16`` taps like SSDLite (strides 16 and 32, no stride-8 level): a quarter of
the locations for decoder, APM, FAM and head, which is what makes the ``mobilenetv3s16_320`` preset
as fast as SSDlite320 (README, "Light PADet").

The channel multiplier maps to torchvision's ``width_mult`` (rounded to multiples of 8 as
torchvision does), so a narrow variant is torchvision's narrow network.
"""
from __future__ import annotations

from typing import Callable, ClassVar

import torch
from torch import Tensor, nn
from torchvision.models import mobilenet_v2, mobilenet_v3_large

from .base import ChannelFn, Encoder, copy_by_name, extra_stage
from .registry import register_backbone

#: (mid, out) channels of the extra stages: half of VGG's (SSDLite's extras are as narrow)
_EXTRA = (128, 256)


class _TorchvisionMobile(Encoder):
    """A torchvision ``features`` Sequential tapped after the blocks ``taps`` (strides 8/16/32)."""

    strides = (8, 16, 32)
    rounding = "ceil"  # padded stride-2 convs everywhere
    builder: ClassVar[Callable[..., nn.Module]]
    taps: ClassVar[tuple[int, int, int]]
    tv_name: ClassVar[str]

    def __init__(self, *, num_taps: int, ch: ChannelFn, extra_bn: bool = True, batch_norm: bool = False) -> None:
        super().__init__()
        # ``ch`` scales 1024 channels to ch(1024): the multiplier, without a second argument
        self.width_mult = ch(1024) / 1024
        net = type(self).builder(weights=None, width_mult=self.width_mult)
        self.features = net.features[: self.taps[-1] + 1]
        tap_channels = self._probe_channels()
        extras = []
        cin = tap_channels[-1]
        mid, out = ch(_EXTRA[0]), ch(_EXTRA[1])
        for _ in range(self.num_extra_stages(num_taps)):
            extras.append(extra_stage(cin, mid, out, bn=extra_bn))
            cin = out
        self.extras = nn.ModuleList(extras)
        self.out_channels = tap_channels + [out] * len(extras)

    @torch.no_grad()
    def _probe_channels(self) -> list[int]:
        """Output channels of the tapped blocks (torchvision rounds widths its own way)."""
        was = self.training
        self.eval()
        x = torch.zeros(1, 3, 64, 64)
        chans = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                chans.append(int(x.shape[1]))
        self.train(was)
        return chans

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                feats.append(x)
        return self.with_extra_taps(x, feats)

    @torch.no_grad()
    def load_imagenet(self, state: dict[str, Tensor]) -> list[str]:
        """Copy torchvision ImageNet weights by name (``classifier.*`` is not used); ValueError
        naming the first tensor that is missing or has another shape."""
        hint = f"torchvision {self.tv_name} ImageNet weights need width=1.0"
        return copy_by_name(self.features, state, "features.", hint)


@register_backbone("mobilenet_v3_large")
class MobileNetV3LargeEncoder(_TorchvisionMobile):
    """E_1..E_n: block 6 (40 ch, stride 8), block 12 (112, 16), conv 16 (960, 32), extras."""

    short_name = "mbv3"
    weights_file = "mobilenet_v3_large-8738ca79.pth"
    builder = staticmethod(mobilenet_v3_large)
    taps = (6, 12, 16)
    tv_name = "mobilenet_v3_large"


@register_backbone("mobilenet_v2")
class MobileNetV2Encoder(_TorchvisionMobile):
    """E_1..E_n: block 6 (32 ch, stride 8), block 13 (96, 16), conv 18 (1280, 32), extras."""

    short_name = "mbv2"
    weights_file = "mobilenet_v2-b0353104.pth"
    builder = staticmethod(mobilenet_v2)
    taps = (6, 13, 18)
    tv_name = "mobilenet_v2"


@register_backbone("mobilenet_v3_large_s16")
class MobileNetV3LargeS16Encoder(MobileNetV3LargeEncoder):
    """SSDLite's strides: block 12 (112 ch, stride 16) and conv 16 (960, 32), extras from there.
    Same modules and ImageNet file as :class:`MobileNetV3LargeEncoder`; no stride-8 map."""

    short_name = "mbv3s16"
    strides = (16, 32)
    taps = (12, 16)
