"""Helpers of the export tests: one narrow PADet and ways to run it on every runtime.

The model is the narrow test variant (width 0.125, input 192) with its FAM offset convs and
prediction layers re-initialised to non-trivial values: a fresh PADet has zero offsets (its
deformable convs sample like plain convs) and near-constant predictions, which would let a
wrong DeformConv mapping or a wrong output order pass unnoticed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.graph import InferenceGraph
from training.fam import FAM
from training.model import PADet, build_model

CLASS_NAMES = ["cat", "dog", "person"]
F32 = {"INFERENCE_PRECISION_HINT": "f32"}  # OpenVINO runs bf16 on this CPU otherwise


#: the small variants the export and SDK tests run on, all at input 192: the paper's network (narrow
#: VGG-16) and the light one (MobileNetV3-Large encoder, depthwise-separable decoder/heads,
#: bottleneck FAM), both with feature maps 24, 12, 6, 3, 2, 1, and the real-time light one
#: (SSDLite's taps: maps 12, 6, 3, 2, 1, 1), and the dense light one (``resnet18q_320`` as it is:
#: ResNet-18 at width 0.25, the paper's decoder and heads)
NARROW = {"vgg": dict(preset="vgg16_384", width=0.125), "light": dict(preset="mobilenetv3_320", width=0.25),
          "light_s16": dict(preset="mobilenetv3s16_320", width=0.25),
          "light_r18": dict(preset="resnet18q_320", width=0.25, data_bn=True)}  # fmt: skip


def make_narrow_model(seed: int = 0, kind: str = "vgg", **overrides: Any) -> PADet:
    """The narrow model (``kind`` of :data:`NARROW`) with offsets of ±1-3 pixels (fractional,
    some past the border) and predictions that vary across anchors."""
    torch.manual_seed(seed)
    spec = NARROW[kind]
    model = build_model(spec["preset"], len(CLASS_NAMES), width=spec["width"], input_size=192, **overrides).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, FAM):
                for conv in _offset_convs(m):
                    conv.weight.normal_(0, 1.0)
                    conv.bias.normal_(0, 1.5)
        preds = [h.cls for h in model.heads] + [h.box for h in model.heads]
        if model.apm is not None:
            preds += [p for a in model.apm for p in (a.score, a.reg) if p is not None]
        for conv in preds:
            conv.weight.normal_(0, 0.05)
            conv.bias.normal_(0, 0.2)
        if spec.get("data_bn"):
            _image_batchnorm_and_small_offsets(model)
    return model


def _offset_convs(fam: FAM) -> list[torch.nn.Conv2d]:
    """The offset convs (not the bottleneck's 1x1s, whose scale would just grow the features)."""
    return [c for c in fam.modules() if isinstance(c, torch.nn.Conv2d) and c is not fam.reduce and c is not fam.point]


@torch.no_grad()
def _image_batchnorm_and_small_offsets(model: PADet) -> None:
    """BatchNorm statistics of images, as a trained network has: at the initial ones (mean 0,
    variance 1) a ResNet's activations grow through its residual sums until every class score
    saturates, float error reaches 1e-3, and the offsets tens of pixels. Variances are kept
    >= 0.05 (not ~0 for channels that are always zero), and the offset convs scaled back to
    offsets of about 2 pixels."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # a plain average over the batches
    model.train()
    for _ in range(4):
        model(torch.randn(4, 3, 192, 192))
    model.eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # a channel that ReLU left dead would be scaled by 1/sqrt(eps)
            m.running_var.clamp_(min=0.05)
            m.weight.mul_(0.5)  # activations of about 1, as in the other test networks
    convs = [c for m in model.modules() if isinstance(m, FAM) for c in _offset_convs(m)]
    outs: dict[torch.nn.Module, torch.Tensor] = {}
    hooks = [c.register_forward_hook(lambda mod, _, out: outs.__setitem__(mod, out)) for c in convs]
    model(torch.randn(2, 3, 192, 192))
    for h in hooks:
        h.remove()
    for c in convs:
        scale = 2.0 / float(outs[c].std())
        c.weight.mul_(scale)
        c.bias.mul_(scale)


def torch_outputs(model: PADet, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        return [t.numpy() for t in InferenceGraph(model)(torch.from_numpy(x))]


def random_images(batch: int, size: int = 192, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def run_ort(path: str | Path, x: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def run_ov(model_or_path: Any, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """Outputs by name (compiling can give an output extra names, so never by get_any_name)."""
    import openvino as ov

    compiled = ov.Core().compile_model(model_or_path if not isinstance(model_or_path, Path) else str(model_or_path),
                                       "CPU", F32)
    res = compiled(x)
    return [res[compiled.output(n)] for n in names]


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.shape == v.shape, (u.shape, v.shape)
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))
