"""Post-processing in plain numpy: the test oracle of the Cython kernels (``native/padet_native.pyx``).

It follows docs/postprocess_contract.md step for step and is written to be read, not to be
fast; ``padet_sdk.native`` runs it only when the Cython extension is not built.

Box formats: anchors and decoded boxes are (cx, cy, w, h), NMS inputs and pipeline outputs are
(x1, y1, x2, y2), all in units of the input size. Box coding and IoU: :mod:`padet_sdk.boxes`.

Numerics are chosen so that the native code can match them bit for bit: decoding is float64
rounded to float32 once per decode, xyxy conversion and clipping are float32, IoU and the
soft-NMS decay factors are float64, scores are float32 and are compared with thresholds cast
to float32.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .boxes import box_iou, cxcywh_to_xyxy, decode_boxes
from .options import NMS_METHODS, PostprocessOptions

#: the decays of :func:`soft_nms`
METHODS = tuple(NMS_METHODS.values())


def soft_nms(
    boxes: np.ndarray, scores: np.ndarray, method: str, iou_threshold: float, sigma: float, score_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS (Bodla et al. 2017) of (n, 4) xyxy boxes with (n,) scores, ``method`` one of
    :data:`METHODS`. No defaults: the SDK's are those of :func:`padet_sdk.native.soft_nms`.

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


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
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
    anchors: np.ndarray, apm_scores: np.ndarray | None, apm_deltas: np.ndarray | None, cls_scores: np.ndarray,
    det_deltas: np.ndarray, options: PostprocessOptions, variances: Sequence[float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Single-image PADet post-processing (contract "Selection"), the oracle of
    :func:`padet_sdk.native.postprocess` (which has the defaults).

    anchors (N, 4) cxcywh; apm_scores (N,) or None; apm_deltas (N, 4) or None;
    cls_scores (N, C+1) softmax with column 0 = background; det_deltas (N, 4); variances (v0, v1).
    Returns boxes (M, 4) float32 xyxy clipped to [0, 1], scores (M,) float32,
    labels (M,) int64 in 1..C, anchor indices (M,) int64; M <= options.max_det.
    """
    o = options
    v0, v1 = (float(v) for v in variances)
    anchors = np.asarray(anchors, dtype=np.float32)
    cls = np.asarray(cls_scores, dtype=np.float32)[:, 1:]
    num_classes = cls.shape[1]
    if len(anchors) == 0:
        return _empty_result()

    promoted = anchors if apm_deltas is None else decode_boxes(apm_deltas, anchors, v0, v1)
    boxes = np.clip(cxcywh_to_xyxy(decode_boxes(det_deltas, promoted, v0, v1)), 0, 1)

    # 1-2. valid anchors, then candidates (anchor, class) in flat anchor-major order.
    if apm_scores is None:
        valid = np.ones(len(anchors), dtype=bool)
    else:
        valid = np.asarray(apm_scores, dtype=np.float32) >= np.float32(o.theta)
    flat = np.flatnonzero((cls >= np.float32(o.conf)) & valid[:, None])
    flat_scores = cls.reshape(-1)[flat]
    # 3. pre-NMS top-k: a stable sort of the flat order by score descending.
    top = np.sort(flat[np.argsort(-flat_scores, kind="stable")[:o.pre_nms_top_k]])
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
            boxes[anchor_idx[members]], cand_scores[members], NMS_METHODS[o.nms], o.iou, o.sigma, o.nms_floor
        )
        parts.append((members[keep], new_scores))
    if not parts:
        return _empty_result()

    # 5. concatenate, stable sort by final score descending, keep max_det.
    members = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] for p in parts])
    order = np.argsort(-scores, kind="stable")[:o.max_det]
    chosen = members[order]
    return boxes[anchor_idx[chosen]], scores[order], labels[chosen], anchor_idx[chosen]
