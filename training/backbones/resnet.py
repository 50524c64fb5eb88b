"""ResNet-101 encoder: C3, C4, C5 (strides 8, 16, 32) then stride-2 extra stages.

Module names match torchvision's ``resnet101`` (``conv1``, ``bn1``, ``layer1.0.conv1`` ...), so
its ImageNet weight file loads by name. Built from torchvision's ``Bottleneck`` blocks with a
channel multiplier for narrow variants.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

from .base import ChannelFn, Encoder, extra_stage
from .registry import register_backbone

_LAYERS = [(64, 3, 1), (128, 4, 2), (256, 23, 2), (512, 3, 2)]


@register_backbone("resnet101")
class ResNet101Encoder(Encoder):
    """E_1..E_n: C3, C4, C5, then stride-2 extra stages. Every downsampling is a padded stride-2
    conv or pool, so sizes round up. It always has BatchNorm (``batch_norm`` is not used)."""

    strides = (8, 16, 32)
    rounding = "ceil"
    short_name = "resnet"
    weights_file = "resnet101-63fe2227.pth"

    def __init__(self, *, num_taps: int, ch: ChannelFn, extra_bn: bool = True, batch_norm: bool = False) -> None:
        super().__init__()
        stem = ch(64)
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = stem
        for i, (planes, blocks, stride) in enumerate(_LAYERS, start=1):
            p = ch(planes)
            downsample = None
            if stride != 1 or inplanes != p * Bottleneck.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, p * Bottleneck.expansion, 1, stride, bias=False),
                    nn.BatchNorm2d(p * Bottleneck.expansion),
                )
            layer = [Bottleneck(inplanes, p, stride, downsample)]
            inplanes = p * Bottleneck.expansion
            layer += [Bottleneck(inplanes, p) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layer))
        c3, c4, c5 = (ch(p) * Bottleneck.expansion for p, _, _ in _LAYERS[1:])
        extras = []
        cin = c5
        for _ in range(self.num_extra_stages(num_taps)):
            extras.append(extra_stage(cin, ch(256), ch(512), bn=extra_bn))
            cin = ch(512)
        self.extras = nn.ModuleList(extras)
        self.out_channels = [c3, c4, c5] + [ch(512)] * len(extras)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        c3 = self.layer2(x)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return self.with_extra_taps(c5, [c3, c4, c5])

    @torch.no_grad()
    def load_imagenet(self, state: dict[str, Tensor]) -> list[str]:
        """Load torchvision ``resnet101`` ImageNet weights (the ``fc`` layer is not used)."""
        own = self.state_dict()
        loaded = []
        for k, v in own.items():
            if k.startswith("extras."):
                continue
            src = state.get(k)
            if src is None or src.shape != v.shape:
                raise ValueError(
                    f"backbone weights do not fit: {k} is {None if src is None else tuple(src.shape)}, "
                    f"expected {tuple(v.shape)} (torchvision resnet101 ImageNet weights need width=1.0)"
                )
            own[k] = src
            loaded.append(k)
        self.load_state_dict(own)
        return loaded
