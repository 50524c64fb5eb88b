"""VGG-16 encoder (SSD/RFBNet "reduced fc" variant).

``features`` has exactly torchvision's ``vgg16().features`` layout up to conv5_3, so ImageNet
weights load by name; pool5 becomes 3x3 stride 1, fc6/fc7 become a dilated 3x3 conv and a 1x1
conv (initialised by decimating torchvision's classifier weights when those are given).
With ``batch_norm`` the layout is torchvision's ``vgg16_bn`` (BatchNorm after every conv), whose
ImageNet file loads the same way, and which trains from scratch far more easily.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import ChannelFn, Encoder, copy_by_name, extra_stage
from .registry import register_backbone

# torchvision vgg16 "D" configuration
_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
#: index of conv4_3's ReLU in ``features`` (E_1 is taken after it): 13 convs + pools in the
#: torchvision layout; with BatchNorm (``vgg16_bn``) every conv has one more module.
CONV4_3_RELU = {False: 22, True: 32}
#: (mid, out) channels of SSD's extra stages
_EXTRAS = [(256, 512), (128, 256), (128, 256), (128, 256)]


@register_backbone("vgg16")
class VGG16Encoder(Encoder):
    """E_1..E_n: conv4_3 (stride 8), fc7 (16), then stride-2 extra stages. Its sizes round down
    (max-pooling)."""

    strides = (8, 16)
    rounding = "floor"
    short_name = "vgg"

    def __init__(self, *, num_taps: int, ch: ChannelFn, extra_bn: bool = True, batch_norm: bool = False) -> None:
        super().__init__()
        self.weights_file = "vgg16_bn-6c64b313.pth" if batch_norm else "vgg16-397923af.pth"
        self.conv4_3_relu = CONV4_3_RELU[batch_norm]
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG16:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.Conv2d(cin, ch(v), 3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(ch(v)))
                layers.append(nn.ReLU(inplace=True))
                cin = ch(v)
        layers.append(nn.MaxPool2d(3, 1, 1))  # pool5, stride 1
        self.features = nn.Sequential(*layers)
        fc = ch(1024)
        self.fc6 = nn.Conv2d(cin, fc, 3, padding=6, dilation=6)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.relu = nn.ReLU(inplace=True)
        specs = _EXTRAS[: self.num_extra_stages(num_taps)]
        if len(specs) < self.num_extra_stages(num_taps):
            raise ValueError(f"VGG-16 has at most {len(self.strides) + len(_EXTRAS)} taps, {num_taps} asked for")
        extras = []
        cin = fc
        for mid, out in specs:
            extras.append(extra_stage(cin, ch(mid), ch(out), bn=extra_bn))
            cin = ch(out)
        self.extras = nn.ModuleList(extras)
        self.out_channels = [ch(512), fc] + [ch(o) for _, o in specs]

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == self.conv4_3_relu:
                feats.append(x)
        x = self.relu(self.fc7(self.relu(self.fc6(x))))
        feats.append(x)
        return self.with_extra_taps(x, feats)

    @torch.no_grad()
    def load_imagenet(self, state: dict[str, Tensor]) -> list[str]:
        """Load torchvision ``vgg16`` ImageNet weights; fc6/fc7 by SSD's decimation.

        Returns the names of this encoder's parameters that were set.
        """
        loaded = copy_by_name(self.features, state, "features.", "torchvision vgg16 / vgg16_bn ImageNet weights "
                              "need width=1.0 and backbone_bn matching the file")  # fmt: skip
        if "classifier.0.weight" in state and self.fc6.out_channels == 1024:
            w6 = state["classifier.0.weight"].view(4096, 512, 7, 7)
            self.fc6.weight.copy_(w6[::4, :, ::3, ::3])
            self.fc6.bias.copy_(state["classifier.0.bias"][::4])
            w7 = state["classifier.3.weight"].view(4096, 4096, 1, 1)
            self.fc7.weight.copy_(w7[::4, ::4])
            self.fc7.bias.copy_(state["classifier.3.bias"][::4])
            loaded += ["fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias"]
        return loaded
