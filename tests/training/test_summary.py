"""python -m training.summary: multiply-adds per preset and per part."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from training import PRESETS
from training.summary import count_macs, main


def test_count_macs_counts_a_conv_and_a_deformable_conv_as_the_products_they_compute():
    from torchvision.ops import DeformConv2d

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.dcn = DeformConv2d(8, 8, 3, padding=1, groups=4)

        def forward(self, x):
            y = self.conv(x)
            return self.dcn(y, torch.zeros(1, 18, 16, 16))

    macs = count_macs(Net(), 16, {"conv": None, "dcn": None})
    assert macs["conv"] == 16 * 16 * 8 * 3 * 9
    assert macs["dcn"] == 16 * 16 * 8 * 2 * 9  # groups 4: 2 input channels per output
    assert macs["total"] == macs["conv"] + macs["dcn"]


@pytest.mark.slow
def test_all_prints_gmacs_for_every_preset(capsys):
    assert main(["--all"]) == 0
    out = capsys.readouterr().out
    rows = {row.split()[0]: row.split() for row in out.splitlines()[1:]}
    gmac = {name: float(r[3]) for name, r in rows.items()}
    assert set(gmac) == set(PRESETS)
    # a preset that has its own channel multiplier is counted at it, not at 1.0
    assert float(rows["resnet18q_320"][2]) == 0.25 and float(rows["vgg16_384"][2]) == 1.0
    assert gmac["resnet18q_320"] < 1.0 < gmac["resnet18_320"]
    # the paper's VGG-16 at 384 is ~57-59 GMAC (RFBNet/SSD counts); the light presets are under 1.5
    assert 50 < gmac["vgg16_384"] < 65
    assert gmac["mobilenetv3_320"] < 1.0 and gmac["mobilenetv3_384"] < 1.5
    assert gmac["mobilenetv3_320"] * 50 < gmac["vgg16_384"]
