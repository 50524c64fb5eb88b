"""Anchor ↔ ground-truth matching (paper §3 "Anchor Design and Matching").

The same rule serves the APM (on initial anchors) and the detection module (on promoted
anchors): each ground truth takes its best-IoU anchor; any anchor with IoU ≥ ``pos_iou`` is
positive; below ``neg_iou`` it is negative; in between it is ignored.
"""
from __future__ import annotations

from enum import IntEnum

import torch
from torch import Tensor
from torchvision.ops import box_iou

from .box_coder import compute_dtype


class Match(IntEnum):
    """Values of a match vector that are not a ground-truth index (those are ≥ 0)."""

    NEGATIVE = -1
    IGNORE = -2


@torch.no_grad()
def match(gt_boxes: Tensor, anchors_xyxy: Tensor, pos_iou: float = 0.5, neg_iou: float = 0.3) -> Tensor:
    """Assign each anchor a ground-truth index, :attr:`Match.NEGATIVE` or :attr:`Match.IGNORE`.

    Args:
        gt_boxes: Tensor[G, 4] xyxy (any unit, same as the anchors).
        anchors_xyxy: Tensor[N, 4] xyxy.
    Returns:
        LongTensor[N].
    """
    n = anchors_xyxy.shape[0]
    if gt_boxes.numel() == 0:
        return torch.full((n,), Match.NEGATIVE, dtype=torch.long, device=anchors_xyxy.device)
    dtype = compute_dtype(gt_boxes, anchors_xyxy)
    iou = box_iou(gt_boxes.to(dtype), anchors_xyxy.to(dtype))  # (G, N)
    best_iou, best_gt = iou.max(dim=0)  # per anchor
    matches = torch.full((n,), Match.IGNORE, dtype=torch.long, device=anchors_xyxy.device)
    matches[best_iou < neg_iou] = Match.NEGATIVE
    pos = best_iou >= pos_iou
    matches[pos] = best_gt[pos]
    # Best-match forcing: every ground truth keeps its best anchor, even under pos_iou, so that no
    # object goes without a positive. Later ground truths win a contested anchor.
    gt_best_iou, gt_best_anchor = iou.max(dim=1)
    for g in torch.nonzero(gt_best_iou > 0).flatten().tolist():
        matches[gt_best_anchor[g]] = g
    return matches


@torch.no_grad()
def ignore_easy_negatives(matches: Tensor, apm_prob: Tensor, theta: float) -> Tensor:
    """Detection-side θ rule: a negative whose APM positive-probability is < θ is ignored.

    Args:
        matches: LongTensor[N] from :func:`match` on the promoted anchors.
        apm_prob: Tensor[N] sigmoid of the APM score.
    """
    out = matches.clone()
    out[(matches == Match.NEGATIVE) & (apm_prob < theta)] = Match.IGNORE
    return out
