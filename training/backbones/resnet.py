"""ResNet encoders (ResNet-101, ResNet-18): C3, C4, C5 (strides 8, 16, 32) then stride-2 extras.

Module names match torchvision's ``resnet101`` / ``resnet18`` (``conv1``, ``bn1``,
``layer1.0.conv1`` ...), so their ImageNet weight files load by name. Built from torchvision's
``Bottleneck`` / ``BasicBlock`` with a channel multiplier for narrow variants.

ResNet-18 is the light encoder that trains from scratch on a CPU: plain 3x3 convs and ReLU, no
depthwise conv, squeeze-excitation or hardswish, whose backward passes make a MobileNetV3 training
step cost twice a narrow VGG's at the same multiply-adds (README, "Light PADet").
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from .base import ChannelFn, Encoder, copy_by_name, extra_stage
from .registry import register_backbone


class _TorchvisionResNet(Encoder):
    """E_1..E_n: C3, C4, C5, then stride-2 extra stages. Every downsampling is a padded stride-2
    conv or pool, so sizes round up. It always has BatchNorm (``batch_norm`` is not used)."""

    strides = (8, 16, 32)
    rounding = "ceil"
    block: ClassVar[type[BasicBlock] | type[Bottleneck]]
    #: (planes, blocks, stride) of layer1..layer4
    layers: ClassVar[tuple[tuple[int, int, int], ...]]
    #: (mid, out) channels of the extra stages at full width
    extra_channels: ClassVar[tuple[int, int]] = (256, 512)
    tv_name: ClassVar[str]

    def __init__(self, *, num_taps: int, ch: ChannelFn, extra_bn: bool = True, batch_norm: bool = False) -> None:
        super().__init__()
        block = type(self).block
        stem = ch(64)
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = stem
        for i, (planes, blocks, stride) in enumerate(self.layers, start=1):
            p = ch(planes)
            downsample = None
            if stride != 1 or inplanes != p * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, p * block.expansion, 1, stride, bias=False),
                    nn.BatchNorm2d(p * block.expansion),
                )
            layer = [block(inplanes, p, stride, downsample)]
            inplanes = p * block.expansion
            layer += [block(inplanes, p) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layer))
        c3, c4, c5 = (ch(p) * block.expansion for p, _, _ in self.layers[1:])
        mid, out = ch(self.extra_channels[0]), ch(self.extra_channels[1])
        extras = []
        cin = c5
        for _ in range(self.num_extra_stages(num_taps)):
            extras.append(extra_stage(cin, mid, out, bn=extra_bn))
            cin = out
        self.extras = nn.ModuleList(extras)
        self.out_channels = [c3, c4, c5] + [out] * len(extras)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        c3 = self.layer2(x)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return self.with_extra_taps(c5, [c3, c4, c5])

    @torch.no_grad()
    def load_imagenet(self, state: dict[str, Tensor]) -> list[str]:
        """Load torchvision ImageNet weights by name (the ``fc`` layer is not used); ValueError
        naming the first tensor that is missing or has another shape."""
        hint = f"torchvision {self.tv_name} ImageNet weights need width=1.0"
        return copy_by_name(self, state, "", hint, skip=("extras.",))


@register_backbone("resnet101")
class ResNet101Encoder(_TorchvisionResNet):
    """C3 (512 ch), C4 (1024), C5 (2048) of torchvision's ``resnet101``, extras 256 -> 512."""

    short_name = "resnet"
    weights_file = "resnet101-63fe2227.pth"
    block = Bottleneck
    layers = ((64, 3, 1), (128, 4, 2), (256, 23, 2), (512, 3, 2))
    tv_name = "resnet101"


@register_backbone("resnet18")
class ResNet18Encoder(_TorchvisionResNet):
    """C3 (128 ch), C4 (256), C5 (512) of torchvision's ``resnet18``; extras 128 -> 256, half
    of ResNet-101's as for the mobile encoders."""

    short_name = "resnet18_"
    weights_file = "resnet18-f37072fd.pth"
    block = BasicBlock
    layers = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))
    extra_channels = (128, 256)
    tv_name = "resnet18"
