"""Box coding and box geometry in numpy: the runtime's one copy, and the one numpy IoU of the tree.

Formats: anchors and decoded boxes are (cx, cy, w, h), IoU inputs (x1, y1, x2, y2), all in
units of the input size (any unit for :func:`box_iou`). Deltas are (dx, dy, dw, dh) scaled by
the variances (v0 for the centre, v1 for the size). Numerics: docs/postprocess_contract.md
"Clarifications" (the Cython kernels round the same way, bit for bit).
"""
from __future__ import annotations

import math

import numpy as np

#: dw, dh are clamped to this before exp (torchvision's and Faster R-CNN's bound), so that an
#: untrained head cannot make an inf box. Training, the numpy code and the Cython kernels all
#: read it from here.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)

#: SSD's (centre, size) variances.
DEFAULT_VARIANCES = (0.1, 0.2)


def decode_boxes(deltas: np.ndarray, anchors: np.ndarray, v0: float = 0.1, v1: float = 0.2) -> np.ndarray:
    """SSD decode: (N, 4) float32 cxcywh boxes from (N, 4) deltas on (N, 4) cxcywh anchors
    (float64 inside, rounded to float32 once)."""
    d = np.asarray(deltas, dtype=np.float32).astype(np.float64)
    a = np.asarray(anchors, dtype=np.float32).astype(np.float64)
    out = np.empty(d.shape, dtype=np.float64)
    out[:, :2] = a[:, :2] + d[:, :2] * v0 * a[:, 2:]
    out[:, 2:] = a[:, 2:] * np.exp(np.minimum(d[:, 2:] * v1, BBOX_XFORM_CLIP))
    return out.astype(np.float32)


def encode_boxes(boxes: np.ndarray, anchors: np.ndarray, v0: float = 0.1, v1: float = 0.2) -> np.ndarray:
    """Inverse of :func:`decode_boxes`: (N, 4) float32 deltas of cxcywh boxes on anchors."""
    b = np.asarray(boxes, dtype=np.float64)
    a = np.asarray(anchors, dtype=np.float64)
    dxy = (b[:, :2] - a[:, :2]) / (v0 * a[:, 2:])
    dwh = np.log(b[:, 2:] / a[:, 2:]) / v1
    return np.concatenate([dxy, dwh], axis=1).astype(np.float32)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) cxcywh -> (N, 4) xyxy, in float32 (as training/box_coder.py does it)."""
    b = np.asarray(boxes, dtype=np.float32)
    half = b[:, 2:] / np.float32(2)
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(N,) float64 areas of (N, 4) xyxy boxes, continuous (no +1)."""
    b = np.asarray(boxes, dtype=np.float64)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) float64 IoU of (n, 4) and (m, 4) xyxy boxes, continuous coordinates (no VOC "+1");
    0 where they do not overlap or the union is <= 0."""
    a64 = np.asarray(a, dtype=np.float64)[:, None, :]
    b64 = np.asarray(b, dtype=np.float64)[None, :, :]
    iw = np.minimum(a64[..., 2], b64[..., 2]) - np.maximum(a64[..., 0], b64[..., 0])
    ih = np.minimum(a64[..., 3], b64[..., 3]) - np.maximum(a64[..., 1], b64[..., 1])
    overlap = (iw > 0) & (ih > 0)
    inter = np.where(overlap, iw * ih, 0.0)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where(overlap & (union > 0), iou, 0.0)
