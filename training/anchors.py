"""SSD-style anchors, generated once per input size as one array.

Order matches the network's flattened outputs: level by level, locations row-major (y then x),
the anchors of a location consecutive in the order 1, 1', then the configured ratios.
"""
from __future__ import annotations

import math

import numpy as np

from .config import AnchorConfig


def generate_anchors(feature_sizes: tuple[int, ...], cfg: AnchorConfig) -> np.ndarray:
    """All anchors of a network with the given decoder map sizes.

    Returns:
        float32 array (N, 4) of (cx, cy, w, h) in units of the input size (0..1, not clipped:
        SSD leaves big anchors sticking out of the image).
    """
    if len(feature_sizes) != cfg.num_levels:
        raise ValueError(f"{len(feature_sizes)} feature maps but {cfg.num_levels} anchor scales")
    out = []
    for level, f in enumerate(feature_sizes):
        s = cfg.scales[level]
        s_prime = math.sqrt(s * cfg.scales[level + 1])
        wh = [(s, s), (s_prime, s_prime)]
        wh += [(s * math.sqrt(r), s / math.sqrt(r)) for r in cfg.ratios(level)]
        wh_arr = np.asarray(wh, dtype=np.float64)  # (A, 2)
        centers = (np.arange(f, dtype=np.float64) + 0.5) / f
        cy, cx = np.meshgrid(centers, centers, indexing="ij")  # row-major: y outer, x inner
        ctr = np.stack([cx.ravel(), cy.ravel()], axis=1)  # (f*f, 2)
        a = len(wh)
        level_anchors = np.concatenate(
            [np.repeat(ctr, a, axis=0), np.tile(wh_arr, (f * f, 1))], axis=1
        )  # (f*f*A, 4)
        out.append(level_anchors)
    return np.concatenate(out, axis=0).astype(np.float32)
