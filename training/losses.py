"""PADet loss (paper §3.3):

    L = (1/N_apm)·(BCE(p, [y≥1]) + [y≥1]·smoothL1(x, g)) + (1/N_d)·(CE(c, y) + [y≥1]·smoothL1(t, g))

N_apm / N_d are the positives of the batch (at least 1). The APM matches the initial anchors;
detection matches the promoted anchors (decoded APM deltas, detached) and ignores negatives
whose APM positive-probability is < θ. Target assignment runs under ``no_grad``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .box_coder import compute_dtype, cxcywh_to_xyxy, decode, encode, xyxy_to_cxcywh
from .config import PADetConfig
from .matcher import Match, ignore_easy_negatives, match

#: class target for ignored anchors in the detection CE
IGNORE_INDEX = -100


def _f32(x: Tensor) -> Tensor:
    """``x`` in :func:`~training.box_coder.compute_dtype`: at least float32, float64 kept."""
    return x.to(compute_dtype(x))


@dataclass
class Targets:
    """Per-anchor training targets for a batch (B images, N anchors)."""

    apm_matches: Tensor | None  # (B, N) long: gt index / Match.NEGATIVE / Match.IGNORE
    apm_boxes: Tensor | None  # (B, N, 4) encoded targets w.r.t. the initial anchors
    det_labels: Tensor  # (B, N) long: 0 background, 1..C, IGNORE_INDEX
    det_boxes: Tensor  # (B, N, 4) encoded targets w.r.t. the promoted anchors


@torch.no_grad()
def assign_targets(outputs, anchors: Tensor, targets: list[dict[str, Tensor]], cfg: PADetConfig) -> Targets:
    """Match every image's ground truth to initial (APM) and promoted (detection) anchors.

    ``targets[b]["boxes"]`` are xyxy in 0..1, ``targets[b]["labels"]`` in 1..C.
    """
    v = cfg.anchors.variances
    has_apm = outputs.apm_logits is not None or outputs.apm_deltas is not None
    anchors = _f32(anchors)
    anchors_xyxy = cxcywh_to_xyxy(anchors)
    apm_m, apm_b, det_l, det_b = [], [], [], []
    for b, t in enumerate(targets):
        gt = _f32(t["boxes"].to(anchors.device))
        labels = t["labels"].to(anchors.device)
        gt_cxcywh = xyxy_to_cxcywh(gt)
        gt_cxcywh = torch.cat([gt_cxcywh[:, :2], gt_cxcywh[:, 2:].clamp(min=1e-6)], dim=1)
        if has_apm:
            m = match(gt, anchors_xyxy, cfg.pos_iou, cfg.neg_iou)
            apm_m.append(m)
            apm_b.append(encode(gt_cxcywh[m.clamp(min=0)], anchors, v) if len(gt) else torch.zeros_like(anchors))
        promoted = decode(outputs.apm_deltas[b].detach(), anchors, v) if outputs.apm_deltas is not None else anchors
        m = match(gt, cxcywh_to_xyxy(promoted), cfg.pos_iou, cfg.neg_iou)
        if outputs.apm_logits is not None:
            m = ignore_easy_negatives(m, torch.sigmoid(_f32(outputs.apm_logits[b].detach())), cfg.postprocess.theta)
        lab = torch.zeros_like(m)
        if len(gt):
            lab = torch.where(m >= 0, labels[m.clamp(min=0)], lab)
        lab[m == Match.IGNORE] = IGNORE_INDEX
        det_l.append(lab)
        det_b.append(encode(gt_cxcywh[m.clamp(min=0)], promoted, v) if len(gt) else torch.zeros_like(anchors))
    return Targets(
        apm_matches=torch.stack(apm_m) if has_apm else None,
        apm_boxes=torch.stack(apm_b) if has_apm else None,
        det_labels=torch.stack(det_l),
        det_boxes=torch.stack(det_b),
    )


def _hard_negative_mask(ce: Tensor, labels: Tensor, ratio: float) -> Tensor:
    """OHEM: per image keep positives and the ``ratio``×positives highest-loss negatives."""
    pos = labels > 0
    neg = labels == 0
    loss = ce.detach().clone()
    loss[~neg] = -1.0
    num_neg = (pos.sum(1, keepdim=True) * ratio).long().clamp(max=labels.shape[1] - 1)
    rank = loss.argsort(dim=1, descending=True).argsort(dim=1)
    return pos | (neg & (rank < num_neg))


def padet_loss(outputs, anchors: Tensor, targets: list[dict[str, Tensor]], cfg: PADetConfig) -> dict[str, Tensor]:
    """Loss parts and their sum (``total``) for a batch of raw outputs."""
    t = assign_targets(outputs, anchors, targets, cfg)
    beta = cfg.smooth_l1_beta
    zero = outputs.cls_logits.sum() * 0.0
    parts: dict[str, Tensor] = {}
    if t.apm_matches is not None:
        pos = t.apm_matches >= 0
        n_apm = pos.sum().clamp(min=1).float()
        parts["apm_cls"] = zero
        parts["apm_reg"] = zero
        if outputs.apm_logits is not None:
            valid = t.apm_matches != Match.IGNORE
            logits = _f32(outputs.apm_logits[valid])
            bce = F.binary_cross_entropy_with_logits(logits, pos[valid].to(logits.dtype), reduction="sum")
            parts["apm_cls"] = bce / n_apm
        if outputs.apm_deltas is not None:
            parts["apm_reg"] = (
                F.smooth_l1_loss(_f32(outputs.apm_deltas[pos]), t.apm_boxes[pos], beta=beta, reduction="sum") / n_apm
            )
        parts["num_pos_apm"] = pos.sum().float()
    labels = t.det_labels
    pos = labels > 0
    n_d = pos.sum().clamp(min=1).float()
    logits = _f32(outputs.cls_logits)
    ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="none")
    ce = ce.view(labels.shape)
    if cfg.neg_pos_ratio is not None:
        ce = ce * _hard_negative_mask(ce, labels, cfg.neg_pos_ratio)
    parts["det_cls"] = ce.sum() / n_d
    parts["det_reg"] = F.smooth_l1_loss(_f32(outputs.det_deltas[pos]), t.det_boxes[pos], beta=beta, reduction="sum") / n_d
    parts["num_pos_det"] = pos.sum().float()
    parts["total"] = sum(v for k, v in parts.items() if not k.startswith("num_"))
    return parts
