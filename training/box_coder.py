"""SSD box coding: the one encode/decode pair used by training, export and (as the oracle of)
the SDK. ``padet_sdk/boxes.py`` and ``native/`` carry numpy/Cython copies that tests check
against these functions; the clamp constant and the default variances are defined there, once.

Boxes and anchors here are (cx, cy, w, h) in units of the input size; deltas are
(dx, dy, dw, dh) scaled by the variances.
"""
from __future__ import annotations

import torch
from torch import Tensor

from padet_sdk.boxes import BBOX_XFORM_CLIP, DEFAULT_VARIANCES

__all__ = ["BBOX_XFORM_CLIP", "DEFAULT_VARIANCES", "encode", "decode", "cxcywh_to_xyxy", "xyxy_to_cxcywh"]


def encode(boxes: Tensor, anchors: Tensor, variances: tuple[float, float] = DEFAULT_VARIANCES) -> Tensor:
    """Regression targets of ``boxes`` relative to ``anchors``.

    Args:
        boxes: Tensor[..., 4] cxcywh.
        anchors: Tensor[..., 4] cxcywh, broadcastable with ``boxes``.
    Returns:
        Tensor[..., 4] deltas.
    """
    v0, v1 = variances
    dxy = (boxes[..., :2] - anchors[..., :2]) / (v0 * anchors[..., 2:])
    dwh = torch.log(boxes[..., 2:] / anchors[..., 2:]) / v1
    return torch.cat([dxy, dwh], dim=-1)


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """float32, or float64 when any input is float64: AMP's half-precision outputs are raised, and
    a ``train.py --dtype float64`` run (numerical checks) is never rounded to float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def decode(deltas: Tensor, anchors: Tensor, variances: tuple[float, float] = DEFAULT_VARIANCES) -> Tensor:
    """Inverse of :func:`encode`: boxes (cxcywh) from deltas on anchors, in :func:`compute_dtype`."""
    v0, v1 = variances
    dtype = compute_dtype(deltas, anchors)
    deltas = deltas.to(dtype)
    anchors = anchors.to(dtype)
    cxcy = anchors[..., :2] + deltas[..., :2] * v0 * anchors[..., 2:]
    wh = anchors[..., 2:] * torch.exp(torch.clamp(deltas[..., 2:] * v1, max=BBOX_XFORM_CLIP))
    return torch.cat([cxcy, wh], dim=-1)


def cxcywh_to_xyxy(b: Tensor) -> Tensor:
    half = b[..., 2:] / 2
    return torch.cat([b[..., :2] - half, b[..., :2] + half], dim=-1)


def xyxy_to_cxcywh(b: Tensor) -> Tensor:
    return torch.cat([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], dim=-1)
