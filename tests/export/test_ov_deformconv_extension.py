"""The OpenVINO DeformConv conversion rule follows the ONNX spec, not just PADet's one use of it:
attributes (strides, pads, dilations, group, offset_group) and the optional inputs (B, mask)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import deform_conv2d

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def _deformconv_onnx(path, x, w, off, b, mask, *, stride, pad, dilation, group, offset_group):
    import onnx
    from onnx import TensorProto, helper

    names = ["X", "W", "offset", "B" if b is not None else "", "mask" if mask is not None else ""]
    while names[-1] == "":
        names.pop()
    feeds = {"X": x, "W": w, "offset": off, "B": b, "mask": mask}
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, feeds[n].shape) for n in names if n]
    node = helper.make_node(
        "DeformConv", names, ["Y"], strides=[stride] * 2, pads=[pad] * 4, dilations=[dilation] * 2,
        group=group, offset_group=offset_group,
    )
    out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph([node], "dc", inputs, [out]), opset_imports=[helper.make_opsetid("", 19)])
    onnx.save(model, str(path))
    return {n: feeds[n] for n in names if n}


CASES = {
    "padet_like": dict(stride=1, pad=1, dilation=1, group=1, offset_group=1, bias=True, mask=False),
    "mask_without_bias": dict(stride=1, pad=1, dilation=1, group=1, offset_group=1, bias=False, mask=True),
    "stride2_dilation2_groups": dict(stride=2, pad=2, dilation=2, group=2, offset_group=2, bias=True, mask=True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_deformconv_extension_matches_torchvision(case, tmp_path):
    import openvino as ov

    from padet_sdk.ov_extensions import read_onnx_with_extensions

    c = CASES[case]
    rng = np.random.default_rng(0)
    cin, cout, hw, k = 4, 6, 11, 3
    og = c["offset_group"]
    out_hw = (hw + 2 * c["pad"] - c["dilation"] * (k - 1) - 1) // c["stride"] + 1
    x = rng.standard_normal((2, cin, hw, hw)).astype(np.float32)
    w = rng.standard_normal((cout, cin // c["group"], k, k)).astype(np.float32)
    off = (2.5 * rng.standard_normal((2, og * 2 * k * k, out_hw, out_hw))).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32) if c["bias"] else None
    mask = rng.uniform(0, 1, (2, og * k * k, out_hw, out_hw)).astype(np.float32) if c["mask"] else None
    feeds = _deformconv_onnx(tmp_path / "dc.onnx", x, w, off, b, mask, stride=c["stride"], pad=c["pad"],
                             dilation=c["dilation"], group=c["group"], offset_group=og)
    t = (lambda a: None if a is None else torch.from_numpy(a))
    ref = deform_conv2d(t(x), t(off), t(w), t(b), stride=c["stride"], padding=c["pad"], dilation=c["dilation"],
                        mask=t(mask)).numpy()
    compiled = ov.Core().compile_model(read_onnx_with_extensions(ov.Core(), tmp_path / "dc.onnx"), "CPU", F32)
    got = compiled(feeds)[compiled.output(0)]
    assert got.shape == ref.shape
    # float32, <= 36 products per output in another order than torchvision's: measured max |diff| 2.2e-6
    # (|ref| <= 15), 1% of the bound, on AVX-512 and AVX2 (qemu EPYC-Rome) alike
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)


def test_read_onnx_with_extensions_reports_missing_file(tmp_path):
    import openvino as ov

    from padet_sdk.ov_extensions import read_onnx_with_extensions

    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        read_onnx_with_extensions(ov.Core(), tmp_path / "nope.onnx")


def test_ov_extensions_module_is_torch_free():
    """The SDK imports it on devices without torch."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import padet_sdk.ov_extensions, padet_sdk.model_file\n"
        "padet_sdk.ov_extensions.deform_conv_extension()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
