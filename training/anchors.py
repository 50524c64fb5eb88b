"""SSD-style anchors of a PADet config, generated once per input size as one array.

The generator itself is ``padet_sdk.anchors.generate_anchors`` (numpy, torch-free) so that the
runtime rebuilds exactly these anchors from a model file's metadata.
"""
from __future__ import annotations

import numpy as np

from padet_sdk.anchors import generate_anchors as _generate

from .config import AnchorConfig


def generate_anchors(feature_sizes: tuple[int, ...], cfg: AnchorConfig) -> np.ndarray:
    """float32 (N, 4) (cx, cy, w, h) in units of the input size; see ``padet_sdk.anchors``."""
    if len(feature_sizes) != cfg.num_levels:
        raise ValueError(f"{len(feature_sizes)} feature maps but {cfg.num_levels} anchor scales")
    return _generate(feature_sizes, cfg.scales, [cfg.ratios(i) for i in range(cfg.num_levels)])
