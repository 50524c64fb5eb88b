"""Synthetic network outputs for the post-processing tests and benchmarks/bench_postprocess.py:
shaped like the real ones on the 18,400 anchors of vgg16_384, with the score statistics that
matter to NMS (few confident anchors, or every score tied)."""
from __future__ import annotations

import numpy as np

from padet_sdk.anchors import generate_anchors


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
