"""Random NMS inputs with the awkward cases (duplicated boxes, exactly tied scores)."""
from __future__ import annotations

import numpy as np


def random_nms_case(seed: int, max_n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) float32 xyxy boxes in clusters (so that they overlap) and (n,) float32 scores.

    About a fifth of the boxes are exact copies of others and scores are rounded to 2 decimals,
    so exact ties of both kinds happen in most cases.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, max_n + 1))
    centres = rng.random((max(1, n // 8), 2))
    ctr = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.03, (n, 2))
    wh = rng.uniform(0.02, 0.3, (n, 2))
    boxes = np.concatenate([ctr - wh / 2, ctr + wh / 2], axis=1)
    if n > 1:
        dup = rng.random(n) < 0.2
        boxes[dup] = boxes[rng.integers(0, n, int(dup.sum()))]
    scores = np.round(rng.random(n), 2)
    return boxes.astype(np.float32), scores.astype(np.float32)
