"""Helpers of the native-kernel tests: the built extension (or a failure saying how to build it)
and random NMS inputs with the awkward cases (duplicated boxes, exactly tied scores)."""
from __future__ import annotations

import numpy as np
import pytest

BUILD_HINT = (
    "padet_sdk._native is not built: run `python setup.py build_ext --inplace` "
    "(or `pip install -e .`) in the repository root"
)


@pytest.fixture(scope="session")
def native_ext():
    """The Cython module. Fails (not skips) when it is missing: the comparison is the point."""
    try:
        from padet_sdk import _native
    except ImportError as exc:
        pytest.fail(f"{BUILD_HINT} ({exc})")
    return _native


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
