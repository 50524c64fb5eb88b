"""Loading PADet ``.onnx`` files through OpenVINO (torch-free; the SDK and the exporter share it).

OpenVINO's ONNX front end has no conversion rule for the standard ``DeformConv`` (opset 19),
and its ``org.openvinotoolkit`` variant samples the borders differently from torchvision /
onnxruntime. :func:`deform_conv_extension` maps ``DeformConv`` onto ``DeformableConvolution-8``
with ``bilinear_interpolation_pad=True``, which matches torchvision to float precision.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

DEFORM_CONV_OP = "DeformConv"


def _is_null(output: Any) -> bool:
    """An omitted optional ONNX input ("" as its name) reaches the converter as a NullNode."""
    return output.get_node().get_type_name() == "NullNode"


def _convert_deform_conv(node: Any) -> list[Any]:
    """ONNX DeformConv(X, W, offset, B?, mask?) → DeformableConvolution-8 (+ Add for B).

    Attributes (ONNX spec, opset 19): dilations, group, offset_group, pads
    ([h_begin, w_begin, h_end, w_end]), strides; kernel_shape is implied by W.
    """
    import openvino.opset8 as ops

    x, w, offset = (node.get_input(i) for i in range(3))
    n_in = node.get_input_size()
    bias = node.get_input(3) if n_in > 3 and not _is_null(node.get_input(3)) else None
    mask = node.get_input(4) if n_in > 4 and not _is_null(node.get_input(4)) else None
    strides = list(node.get_attribute("strides", [1, 1]))
    dilations = list(node.get_attribute("dilations", [1, 1]))
    pads = list(node.get_attribute("pads", [0, 0, 0, 0]))
    if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
        raise ValueError(f"DeformConv: only 2-D is supported (strides={strides}, dilations={dilations}, pads={pads})")
    y = ops.deformable_convolution(
        x, offset, w,
        strides=strides, pads_begin=pads[:2], pads_end=pads[2:], dilations=dilations, mask=mask,
        group=int(node.get_attribute("group", 1)), deformable_group=int(node.get_attribute("offset_group", 1)),
        bilinear_interpolation_pad=True,
    )
    if bias is not None:  # DeformableConvolution has no bias input
        y = ops.add(y, ops.reshape(bias, ops.constant(np.array([1, -1, 1, 1], dtype=np.int64)), False))
    return [y.output(0)]


def deform_conv_extension() -> Any:
    """The ``openvino.frontend.onnx.ConversionExtension`` for standard ONNX ``DeformConv``."""
    from openvino.frontend.onnx import ConversionExtension

    return ConversionExtension(DEFORM_CONV_OP, _convert_deform_conv)


def read_onnx_with_extensions(core: Any, path: str | Path) -> Any:
    """``core.read_model`` for a PADet ``.onnx`` with the DeformConv rule registered on ``core``.

    Adding the extension to a core more than once is harmless (measured: one conversion per
    node), so callers need not track which cores already have it. The ONNX ``metadata_props``
    arrive in the model's rt_info under ``["framework", "padet"]``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    core.add_extension(deform_conv_extension())
    return core.read_model(str(path))
