"""The score threshold a user sees by default: the one with the best F1 on a held-out split.

Evaluation (AP) wants every detection down to a low score; a user looking at boxes wants the
threshold where misses and false alarms balance. :func:`best_f1_threshold` takes COCO-style
detections made at a low threshold and the ground truth, matches them greedily (best score
first, same class, IoU >= 0.5, each object at most once, crowd objects neither rewarded nor
punished) and returns the threshold with the highest F1 = 2 TP / (2 TP + FP + FN).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xywh box with (N, 4) xywh boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter + 1e-12)


def match_detections(gt: dict[str, Any], detections: list[dict], iou: float = 0.5) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores, is_true_positive, number of non-crowd objects): every detection that is not on a
    crowd region, marked TP if it is the best-scoring unmatched same-class match of an object."""
    objects: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for a in gt["annotations"]:
        objects[(a["image_id"], a["category_id"])].append(a)
    n_objects = sum(1 for a in gt["annotations"] if not a.get("iscrowd", 0))
    by_key: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for d in detections:
        by_key[(d["image_id"], d["category_id"])].append(d)
    scores, tp = [], []
    for key, dets in by_key.items():
        anns = objects.get(key, [])
        boxes = np.asarray([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
        crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in anns], bool)
        used = np.zeros(len(anns), bool)
        for d in sorted(dets, key=lambda d: -d["score"]):
            ious = _iou(np.asarray(d["bbox"], np.float64), boxes) if len(anns) else np.zeros(0)
            free = np.where(~used & ~crowd & (ious >= iou), ious, -1.0)
            if len(free) and free.max() >= 0:
                used[int(free.argmax())] = True
                scores.append(d["score"])
                tp.append(True)
            elif len(ious) and np.any(crowd & (ious >= iou)):
                continue  # on a crowd region: ignored
            else:
                scores.append(d["score"])
                tp.append(False)
    return np.asarray(scores, np.float64), np.asarray(tp, bool), n_objects


def best_f1_threshold(gt: dict[str, Any], detections: list[dict], iou: float = 0.5,
                      grid: np.ndarray | None = None) -> dict[str, float]:  # fmt: skip
    """The score threshold of ``grid`` (default 0.05, 0.06, ... 0.95) with the highest F1, and
    its precision, recall and F1."""
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2) if grid is None else np.asarray(grid)
    scores, tp, n = match_detections(gt, detections, iou)
    best = {"conf": float(grid[0]), "f1": -1.0, "precision": 0.0, "recall": 0.0}
    for t in grid:
        keep = scores >= t
        n_tp = int(tp[keep].sum())
        n_fp = int(keep.sum()) - n_tp
        f1 = 2 * n_tp / max(2 * n_tp + n_fp + (n - n_tp), 1)
        if f1 > best["f1"] + 1e-12:
            best = {"conf": float(t), "f1": f1, "precision": n_tp / max(n_tp + n_fp, 1), "recall": n_tp / max(n, 1)}
    return best
