"""The CPU training path of the FAM must be the same operator as torchvision's deform_conv2d."""
from __future__ import annotations

import pytest
import torch
from torchvision.ops import deform_conv2d

from training.fam import FAM, deform_conv2d_sampled


@pytest.mark.parametrize("b,c,cout,h,w,groups", [
    (2, 8, 8, 12, 12, 1), (1, 4, 6, 7, 5, 1), (3, 5, 5, 1, 1, 1), (2, 3, 4, 2, 9, 1),
    (2, 8, 8, 6, 7, 8), (1, 6, 6, 5, 5, 3),  # depthwise and grouped (the light head's FAM)
])  # fmt: skip
def test_sampled_deform_conv_matches_torchvision_values_and_gradients(b, c, cout, h, w, groups):
    g = torch.Generator().manual_seed(h * 31 + w)
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    # offsets large enough to sample outside the map and across pixel borders
    off = (3 * torch.randn(b, 18, h, w, generator=g, dtype=torch.float64)).requires_grad_()
    wt = torch.randn(cout, c // groups, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(cout, generator=g, dtype=torch.float64, requires_grad=True)
    ref = deform_conv2d(x, off, wt, bias, padding=(1, 1))
    got = deform_conv2d_sampled(x, off, wt, bias)
    # float64, another summation order than torchvision's: an output sums 9·C <= 72 products, a gradient
    # <= 9·C·B·H·W, so rounding is ~1e-14 (measured 1.7e-14 values, 5.9e-14 gradients, the same on AVX-512
    # and AVX2/qemu EPYC-Rome); a wrong tap or weight gives O(1) errors
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9)
    up = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    g_ref = torch.autograd.grad((ref * up).sum(), [x, off, wt, bias])
    g_got = torch.autograd.grad((got * up).sum(), [x, off, wt, bias])
    for name, a, e in zip(["input", "offset", "weight", "bias"], g_got, g_ref):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-9, msg=f"gradient wrt {name} differs")


def test_fam_training_and_eval_paths_agree():
    torch.manual_seed(0)
    fam = FAM(8, 3, "disentangled")
    for m in (fam.loc, fam.shape):  # non-zero offsets, as after training
        torch.nn.init.normal_(m.weight, std=0.5)
    x, reg = torch.randn(2, 8, 10, 10), torch.randn(2, 12, 10, 10)
    y_train = fam.train()(x, reg)
    y_eval = fam.eval()(x, reg)
    # float32, 72 products per output summed in other orders: measured 1.4e-6 (|y| <= 3.2) on AVX-512 and
    # AVX2 (qemu EPYC-Rome, grid_sample in float64 there: qemu 7.2 crashes in ATen's AVX2 float32 one)
    torch.testing.assert_close(y_train, y_eval, rtol=1e-4, atol=1e-4)
