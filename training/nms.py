"""Soft-NMS in torch (Bodla et al. 2017) — the reference the SDK's native kernel must match.

Follows ``docs/postprocess_contract.md`` exactly (tie rule: lowest input index wins). This is a
readable reference, not a fast kernel: the SDK runs the Cython one.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou

from padet_sdk.postprocess_numpy import METHODS


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    method: str = "linear",
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
) -> tuple[Tensor, Tensor]:
    """Greedy soft-NMS.

    Args:
        boxes: Tensor[n, 4] xyxy, continuous coordinates (area = (x2-x1)(y2-y1)).
        scores: Tensor[n].
    Returns:
        keep: LongTensor[m] indices into the input, in emit order (final score descending);
        new_scores: Tensor[m] the final scores, aligned with ``keep``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    boxes = boxes.double()
    s = scores.double().clone()
    alive = s >= score_threshold
    keep, kept_scores = [], []
    while bool(alive.any()):
        masked = torch.where(alive, s, torch.full_like(s, -1.0))
        i = int(torch.argmax(masked))  # first maximum = lowest index among ties
        keep.append(i)
        kept_scores.append(float(s[i]))
        alive[i] = False
        others = torch.nonzero(alive).flatten()
        if others.numel() == 0:
            break
        # 0/0 of two empty boxes is 0 (contract: IoU is 0 when the union is <= 0)
        iou = box_iou(boxes[i : i + 1], boxes[others])[0].nan_to_num(0.0)
        if method == "linear":
            w = torch.where(iou > iou_threshold, 1 - iou, torch.ones_like(iou))
        elif method == "gaussian":
            w = torch.exp(-(iou * iou) / sigma)
        else:
            w = torch.where(iou > iou_threshold, torch.zeros_like(iou), torch.ones_like(iou))
        s[others] = s[others] * w
        alive[others] = s[others] >= score_threshold
    return (
        torch.tensor(keep, dtype=torch.int64, device=scores.device),
        torch.tensor(kept_scores, dtype=torch.float32, device=scores.device),
    )
