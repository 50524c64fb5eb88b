"""Feature Alignment Module (paper §3.2): a 3x3 deformable conv whose offsets come from the APM.

Offset sources (paper Table 1 / Figure 5), picked by ``mode``:
- ``none``: a plain 3x3 conv, no alignment.
- ``implicit``: offsets from the head features themselves (standard DCN).
- ``explicit_l`` / ``explicit_s`` / ``explicit_ls``: a 1x1 conv on X_l, X_s or [X_l; X_s].
- ``disentangled`` (c): ΔD = repeat(F(X_l), 9) + G(X_s); F gives one (dy, dx) shared by all taps.

X_l are the APM regression channels (dx, dy) of every anchor, X_s the (dw, dh) channels.
Offsets use torchvision's ``deform_conv2d`` layout: (dy, dx) per kernel tap, tap-major.
Offset convs start at zero, so a fresh FAM samples like a regular conv.

Training on a CPU uses :func:`deform_conv2d_sampled` (the same operator built from ``grid_sample``
and a 1x1 conv) because torchvision's CPU backward is single-threaded and took half of every
training step of the narrow CPU model; CUDA training, evaluation and export keep torchvision's
op, which the ONNX export turns into a real ``DeformConv`` node.

Two cheaper forms for light models, each followed by a 1x1 conv back to ``channels``:
``groups`` > 1 (``groups = channels``: a depthwise-separable deformable conv) and ``mid``
channels (a 1x1 conv to ``mid``, the deformable conv at ``mid``: a bottleneck). OpenVINO's CPU
plugin runs grouped deformable convs with its reference kernel (measured 18 ms for a depthwise
128-channel 40x40 map vs 3 ms for a 64-channel full one with its AVX-512 kernel), so the light
presets use the bottleneck.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import deform_conv2d

K = 9  # 3x3 kernel taps


def deform_conv2d_sampled(x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """torchvision ``deform_conv2d`` (3x3, stride 1, padding 1, no mask) as grid_sample + 1x1 conv.

    Same values and gradients as torchvision's op (zero outside the map, bilinear inside), but
    both directions run on ATen's vectorised, multi-threaded kernels: ~10x faster on a CPU for the
    FAM shapes. Tap k = 3*i + j samples at (h - 1 + i + offset[2k], w - 1 + j + offset[2k + 1]).
    """
    b, c, h, w = x.shape
    off = offset.view(b, K, 2, h, w)
    taps = torch.arange(K, device=x.device)
    ky = (taps // 3 - 1).to(x.dtype).view(1, K, 1, 1)
    kx = (taps % 3 - 1).to(x.dtype).view(1, K, 1, 1)
    py = torch.arange(h, device=x.device, dtype=x.dtype).view(1, 1, h, 1) + ky + off[:, :, 0]
    px = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, 1, w) + kx + off[:, :, 1]
    # align_corners=False: pixel p sits at (2p + 1) / size - 1, which also works for 1-pixel maps
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1).view(b, K * h, w, 2)
    cols = nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    groups = c // weight.shape[1]  # as torchvision: the weight holds C / groups input channels
    w1 = weight.reshape(weight.shape[0], weight.shape[1] * K, 1, 1)  # channel-major, as cols
    return nn.functional.conv2d(cols.reshape(b, c * K, h, w), w1, bias, groups=groups)


def split_location_shape(reg: Tensor) -> tuple[Tensor, Tensor]:
    """(B, 4A, H, W) APM regression → X_l (B, 2A, H, W) and X_s (B, 2A, H, W)."""
    b, c, h, w = reg.shape
    r = reg.view(b, c // 4, 4, h, w)
    return r[:, :, :2].reshape(b, c // 2, h, w), r[:, :, 2:].reshape(b, c // 2, h, w)


class FAM(nn.Module):
    def __init__(
        self, channels: int, num_anchors: int, mode: str, *, detach: bool = False, groups: int = 1, mid: int | None = None
    ) -> None:
        super().__init__()
        m = channels if mid is None else mid
        if groups < 1 or m % groups:
            raise ValueError(f"FAM groups must divide its {m} channels, got {groups}")
        self.mode = mode
        self.detach = detach
        self.reduce = nn.Conv2d(channels, m, 1) if m != channels else None
        self.weight = nn.Parameter(torch.empty(m, m // groups, 3, 3))
        self.bias = nn.Parameter(torch.zeros(m))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.point = nn.Conv2d(m, channels, 1) if groups > 1 or m != channels else None
        a2 = 2 * num_anchors
        if mode == "implicit":
            self.offset = nn.Conv2d(channels, 2 * K, 3, padding=1)
        elif mode == "explicit_l" or mode == "explicit_s":
            self.offset = nn.Conv2d(a2, 2 * K, 1)
        elif mode == "explicit_ls":
            self.offset = nn.Conv2d(2 * a2, 2 * K, 1)
        elif mode == "disentangled":
            self.loc = nn.Conv2d(a2, 2, 1)  # c
            self.shape = nn.Conv2d(a2, 2 * K, 1)  # Δs
        elif mode != "none":
            raise ValueError(f"unknown FAM mode {mode!r}")
        self.reset_offsets()

    def reset_offsets(self) -> None:
        """Zero the offset convs: a fresh FAM samples like a regular 3x3 conv (DCN practice)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m is not self.point and m is not self.reduce:
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)

    def offsets(self, x: Tensor, reg: Tensor | None) -> Tensor | None:
        """ΔD (B, 18, H, W), or None for ``none``."""
        if self.mode == "none":
            return None
        if self.mode == "implicit":
            return self.offset(x)
        assert reg is not None, "explicit/disentangled FAM needs the APM regression map"
        if self.detach:
            reg = reg.detach()
        x_l, x_s = split_location_shape(reg)
        if self.mode == "explicit_l":
            return self.offset(x_l)
        if self.mode == "explicit_s":
            return self.offset(x_s)
        if self.mode == "explicit_ls":
            return self.offset(torch.cat([x_l, x_s], dim=1))
        c = self.loc(x_l)
        return c.repeat(1, K, 1, 1) + self.shape(x_s)

    def forward(self, x: Tensor, reg: Tensor | None) -> Tensor:
        off = self.offsets(x, reg)
        if self.reduce is not None:
            x = self.reduce(x)
        if off is None:
            y = nn.functional.conv2d(x, self.weight, self.bias, padding=1, groups=x.shape[1] // self.weight.shape[1])
        elif self.training and x.device.type == "cpu":
            y = deform_conv2d_sampled(x, off, self.weight, self.bias)
        else:
            y = deform_conv2d(x, off, self.weight, self.bias, padding=(1, 1))
        if self.point is not None:
            y = self.point(y)
        return torch.relu(y)
