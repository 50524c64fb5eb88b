"""SSD-style anchor generation in plain numpy — the one generator both training
(``training/anchors.py``) and the runtime use, so anchors rebuilt from a model file's metadata
are the training anchors bit for bit.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def generate_anchors(
    feature_sizes: Sequence[int], scales: Sequence[float], extra_ratios: Sequence[Sequence[float]]
) -> np.ndarray:
    """All anchors of a network, in the order of its flattened outputs.

    Args:
        feature_sizes: decoder map size per level, e.g. (48, 24, 12, 6, 3, 1) at 384.
        scales: s_k per level plus s_{k+1} of the last level (fractions of the input size).
        extra_ratios: per level, the aspect ratios (w/h) after 1 and 1' (size sqrt(s_k s_{k+1})).
    Returns:
        float32 (N, 4) (cx, cy, w, h) in units of the input size, not clipped. Order: level by
        level, locations row-major (y then x), a location's anchors consecutive (1, 1', ratios...).
    """
    if not (len(feature_sizes) == len(extra_ratios) == len(scales) - 1):
        raise ValueError(
            f"{len(feature_sizes)} feature maps, {len(extra_ratios)} ratio lists and "
            f"{len(scales)} scales (need levels, levels, levels + 1)"
        )
    out = []
    for level, f in enumerate(feature_sizes):
        s = scales[level]
        s_prime = math.sqrt(s * scales[level + 1])
        wh = [(s, s), (s_prime, s_prime)] + [(s * math.sqrt(r), s / math.sqrt(r)) for r in extra_ratios[level]]
        wh_arr = np.asarray(wh, dtype=np.float64)
        centers = (np.arange(f, dtype=np.float64) + 0.5) / f
        cy, cx = np.meshgrid(centers, centers, indexing="ij")
        ctr = np.stack([cx.ravel(), cy.ravel()], axis=1)
        a = len(wh)
        out.append(np.concatenate([np.repeat(ctr, a, axis=0), np.tile(wh_arr, (f * f, 1))], axis=1))
    return np.concatenate(out, axis=0).astype(np.float32)
