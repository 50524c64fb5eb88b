"""``torchvision::deform_conv2d`` → ONNX ``DeformConv`` for the legacy TorchScript exporter.

The default (dynamo) exporter already maps the op through onnxscript's torch_lib; the legacy
exporter (``torch.onnx.export(..., dynamo=False)``) knows nothing about it, so without this
symbolic it fails with "Unsupported: ONNX export of operator torchvision::deform_conv2d". It is
kept as a fallback for when torch.export cannot trace a model; both paths must give the same
graph semantics (tests/export/test_onnx_paths.py checks the outputs agree).
"""
from __future__ import annotations

import torch

#: DeformConv entered the ONNX standard domain in opset 19.
MIN_OPSET = 19
_OP_NAME = "torchvision::deform_conv2d"
_registered: set[int] = set()


def _has_legacy_exporter() -> bool:
    try:
        from torch.onnx import register_custom_op_symbolic  # noqa: F401
        from torch.onnx import symbolic_helper  # noqa: F401
    except ImportError:
        return False
    return True


def register_deform_conv_symbolic(opset: int) -> None:
    """Register the symbolic for ``opset`` (idempotent).

    Raises:
        ValueError: ``opset`` < 19 (no standard DeformConv there).
        RuntimeError: this torch build has no legacy exporter any more (use ``dynamo=True``).
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} has no DeformConv; the legacy exporter path needs opset >= {MIN_OPSET}")
    if opset in _registered:
        return
    if not _has_legacy_exporter():
        raise RuntimeError(
            f"torch {torch.__version__} has no legacy TorchScript ONNX exporter "
            "(torch.onnx.register_custom_op_symbolic is gone); export with dynamo=True instead"
        )
    from torch.onnx import register_custom_op_symbolic, symbolic_helper

    @symbolic_helper.parse_args("v", "v", "v", "v", "v", "i", "i", "i", "i", "i", "i", "i", "i", "b")
    def deform_conv2d(
        g, x, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, offset_groups,
        use_mask,
    ):
        # torchvision's schema: (input, weight, offset, mask, bias, ...); ONNX: (X, W, offset, B, mask).
        # torchvision always passes a bias tensor (zeros when the module has none) and a dummy mask
        # when use_mask is False; the dummy must not reach DeformConv (it would zero the output).
        inputs = [x, weight, offset, bias] + ([mask] if use_mask else [])
        return g.op(
            "DeformConv",
            *inputs,
            dilations_i=[dil_h, dil_w],
            group_i=groups,
            offset_group_i=offset_groups,
            pads_i=[pad_h, pad_w, pad_h, pad_w],
            strides_i=[stride_h, stride_w],
        )

    register_custom_op_symbolic(_OP_NAME, deform_conv2d, opset)
    _registered.add(opset)
