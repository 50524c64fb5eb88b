"""Pure-numpy post-processing: the test oracle of the native kernels (``native/padet_native.pyx``).

It follows docs/postprocess_contract.md step for step and is written to be read, not to be
fast; ``padet_sdk.native`` runs it only when the Cython extension is not built.

Box formats: anchors and decoded boxes are (cx, cy, w, h), NMS inputs and pipeline outputs are
(x1, y1, x2, y2), all in units of the input size.

Numerics are chosen so that the native code can match them bit for bit: decoding is float64
rounded to float32 once per decode, xyxy conversion and clipping are float32, IoU and the
soft-NMS decay factors are float64, scores are float32 and are compared with thresholds cast
to float32.
"""
from __future__ import annotations

import math

import numpy as np

from .anchors import generate_anchors

#: dw, dh are clamped to this before exp (the Faster R-CNN bound), so no box becomes inf.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)

METHODS = ("linear", "gaussian", "hard")


def decode_boxes(deltas: np.ndarray, anchors: np.ndarray, v0: float = 0.1, v1: float = 0.2) -> np.ndarray:
    """SSD decode: (N, 4) float32 cxcywh boxes from (N, 4) deltas on (N, 4) cxcywh anchors."""
    d = np.asarray(deltas, dtype=np.float32).astype(np.float64)
    a = np.asarray(anchors, dtype=np.float32).astype(np.float64)
    out = np.empty(d.shape, dtype=np.float64)
    out[:, :2] = a[:, :2] + d[:, :2] * v0 * a[:, 2:]
    out[:, 2:] = a[:, 2:] * np.exp(np.minimum(d[:, 2:] * v1, BBOX_XFORM_CLIP))
    return out.astype(np.float32)


def encode_boxes(boxes: np.ndarray, anchors: np.ndarray, v0: float = 0.1, v1: float = 0.2) -> np.ndarray:
    """Inverse of :func:`decode_boxes` (for tests): (N, 4) deltas of cxcywh boxes on anchors."""
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
    """(n, m) float64 IoU of xyxy boxes; 0 where they do not overlap or the union is <= 0."""
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


def soft_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    method: str = "linear",
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS (Bodla et al. 2017) of (n, 4) xyxy boxes with (n,) scores.

    Returns (keep int64 (m,), new_scores float32 (m,)): indices into the input in emit order
    and the scores they were emitted with. The inputs are not modified.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    s = np.array(scores, dtype=np.float32).reshape(-1)  # a copy: decayed in place below
    thr = np.float32(score_threshold)
    alive = np.flatnonzero(s >= thr)  # ascending, so argmax's first hit is the lowest index
    keep: list[int] = []
    out: list[np.float32] = []
    while alive.size:
        k = int(np.argmax(s[alive]))
        p = alive[k]
        keep.append(int(p))
        out.append(s[p])
        alive = np.delete(alive, k)
        iou = box_iou(boxes[p : p + 1], boxes[alive])[0]
        s64 = s[alive].astype(np.float64)
        if method == "linear":
            s64 = np.where(iou > iou_threshold, s64 * (1.0 - iou), s64)
        elif method == "gaussian":
            s64 = s64 * np.exp(-(iou * iou) / sigma)
        else:
            s64 = np.where(iou > iou_threshold, 0.0, s64)
        s[alive] = s64.astype(np.float32)
        alive = alive[s[alive] >= thr]
    return np.asarray(keep, dtype=np.int64), np.asarray(out, dtype=np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Greedy hard NMS of (n, 4) xyxy boxes: int64 indices kept, by score descending
    (ties: lowest index first; NaN scores last)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float32).reshape(-1)
    order = np.argsort(-s, kind="stable")
    suppressed = np.zeros(len(s), dtype=bool)
    keep = []
    for i, p in enumerate(order):
        if suppressed[p]:
            continue
        keep.append(p)
        rest = order[i + 1 :]
        suppressed[rest[box_iou(boxes[p : p + 1], boxes[rest])[0] > iou_threshold]] = True
    return np.asarray(keep, dtype=np.int64)


def _empty_result() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))


def postprocess(
    anchors: np.ndarray,
    apm_scores: np.ndarray | None,
    apm_deltas: np.ndarray | None,
    cls_scores: np.ndarray,
    det_deltas: np.ndarray,
    theta: float = 0.01,
    conf: float = 0.01,
    method: str = "linear",
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    pre_nms_top_k: int = 1000,
    max_det: int = 300,
    v0: float = 0.1,
    v1: float = 0.2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Single-image PADet post-processing (contract "Selection").

    anchors (N, 4) cxcywh; apm_scores (N,) or None; apm_deltas (N, 4) or None;
    cls_scores (N, C+1) softmax with column 0 = background; det_deltas (N, 4).
    Returns boxes (M, 4) float32 xyxy clipped to [0, 1], scores (M,) float32,
    labels (M,) int64 in 1..C, anchor indices (M,) int64; M <= max_det.
    """
    anchors = np.asarray(anchors, dtype=np.float32)
    cls = np.asarray(cls_scores, dtype=np.float32)[:, 1:]
    num_classes = cls.shape[1]
    if len(anchors) == 0 or pre_nms_top_k <= 0 or max_det <= 0:
        return _empty_result()

    promoted = anchors if apm_deltas is None else decode_boxes(apm_deltas, anchors, v0, v1)
    boxes = np.clip(cxcywh_to_xyxy(decode_boxes(det_deltas, promoted, v0, v1)), 0, 1)

    # 1-2. valid anchors, then candidates (anchor, class) in flat anchor-major order.
    if apm_scores is None:
        valid = np.ones(len(anchors), dtype=bool)
    else:
        valid = np.asarray(apm_scores, dtype=np.float32) >= np.float32(theta)
    flat = np.flatnonzero((cls >= np.float32(conf)) & valid[:, None])
    flat_scores = cls.reshape(-1)[flat]
    # 3. pre-NMS top-k: a stable sort of the flat order by score descending.
    top = np.sort(flat[np.argsort(-flat_scores, kind="stable")[:pre_nms_top_k]])
    anchor_idx = top // num_classes
    labels = top % num_classes + 1
    cand_scores = cls.reshape(-1)[top]

    # 4. class by class, candidates in ascending anchor index (``top`` is sorted).
    parts = []
    for c in range(1, num_classes + 1):
        (members,) = np.nonzero(labels == c)
        if members.size == 0:
            continue
        keep, new_scores = soft_nms(
            boxes[anchor_idx[members]], cand_scores[members], method, iou_threshold, sigma, score_threshold
        )
        parts.append((members[keep], new_scores))
    if not parts:
        return _empty_result()

    # 5. concatenate, stable sort by final score descending, keep max_det.
    members = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] for p in parts])
    order = np.argsort(-scores, kind="stable")[:max_det]
    chosen = members[order]
    return boxes[anchor_idx[chosen]], scores[order], labels[chosen], anchor_idx[chosen]


def ssd_anchors(
    feature_sizes: tuple[int, ...] = (48, 24, 12, 6, 3, 1),
    scales: tuple[float, ...] = (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05),
) -> np.ndarray:
    """SSD anchor layout (vgg16_384: 18,400 anchors), for synthetic test and benchmark data.

    (N, 4) float32 cxcywh; 6 anchors a location on the first 4 levels, 4 on the others.
    """
    ratios = [(2.0, 0.5, 3.0, 1.0 / 3.0) if level < 4 else (2.0, 0.5) for level in range(len(feature_sizes))]
    return generate_anchors(feature_sizes, scales, ratios)


def synthetic_outputs(
    num_classes: int, seed: int = 0, kind: str = "peaky", anchors: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Random network outputs for one image, shaped like the real ones (for tests/benchmarks).

    kind "peaky": most anchors are confident background and ~2 % fire on one class, so the
    candidate counts look like a trained model's; "uniform": every class probability is
    1/(C+1), which saturates pre_nms_top_k with exactly tied scores.
    Returns a dict with anchors, apm_scores, apm_deltas, cls_scores, det_deltas (float32).
    """
    rng = np.random.default_rng(seed)
    anchors = ssd_anchors() if anchors is None else anchors
    n = len(anchors)
    if kind == "uniform":
        cls_scores = np.full((n, num_classes + 1), 1.0 / (num_classes + 1), dtype=np.float32)
        apm_logits = rng.normal(0.0, 1.0, n)
    elif kind == "peaky":
        logits = rng.normal(0.0, 1.0, (n, num_classes + 1))
        logits[:, 0] += 6.0
        hot = rng.random(n) < 0.02
        logits[hot, rng.integers(1, num_classes + 1, hot.sum())] += 9.0
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        cls_scores = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        apm_logits = rng.normal(-6.0, 1.5, n) + 6.0 * hot
    else:
        raise ValueError(f"kind must be 'peaky' or 'uniform', got {kind!r}")
    return {
        "anchors": anchors,
        "apm_scores": (1.0 / (1.0 + np.exp(-apm_logits))).astype(np.float32),
        "apm_deltas": rng.normal(0.0, 0.5, (n, 4)).astype(np.float32),
        "cls_scores": cls_scores,
        "det_deltas": rng.normal(0.0, 0.5, (n, 4)).astype(np.float32),
    }
