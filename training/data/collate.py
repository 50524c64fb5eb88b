"""Batching for detection: images stack, targets (a different number of boxes each) do not."""
from __future__ import annotations

from typing import Any, Sequence

import torch


def detection_collate(
    batch: Sequence[tuple[torch.Tensor, dict[str, Any]]],
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """``DataLoader(collate_fn=detection_collate)``: (image (3, S, S), target) pairs →
    images (B, 3, S, S) and the list of B targets as they are (boxes (K_i, 4) xyxy 0..1)."""
    images = torch.stack([image for image, _ in batch])
    return images, [target for _, target in batch]
