"""Reference post-processing in torch (paper §3.3 "Inference"; docs/postprocess_contract.md).

Two-stage decoding (anchors → APM-promoted anchors → detection boxes), θ filter on the APM
score, score ≥ conf, pre-NMS top-k, class-wise soft-NMS, top ``max_det``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from padet_sdk.options import NMS_METHODS, PostprocessOptions

from .box_coder import DEFAULT_VARIANCES, cxcywh_to_xyxy, decode
from .nms import soft_nms


def decode_outputs(
    anchors: Tensor, apm_deltas: Tensor | None, det_deltas: Tensor, variances: tuple[float, float]
) -> tuple[Tensor, Tensor]:
    """Promoted anchors and detection boxes, both cxcywh (N, 4) — the two decoding stages."""
    promoted = decode(apm_deltas, anchors, variances) if apm_deltas is not None else anchors
    return promoted, decode(det_deltas, promoted, variances)


def postprocess_single(
    anchors: Tensor,
    apm_scores: Tensor | None,
    apm_deltas: Tensor | None,
    cls_scores: Tensor,
    det_deltas: Tensor,
    options: PostprocessOptions = PostprocessOptions(),
    variances: Sequence[float] = DEFAULT_VARIANCES,
) -> dict[str, Tensor]:
    """One image, from probabilities (``apm_scores`` sigmoid, ``cls_scores`` softmax).

    Returns dict with boxes Tensor[M, 4] xyxy in 0..1 (clipped), scores [M], labels [M] (1..C),
    anchor_idx [M]; M <= options.max_det.
    """
    o = options
    _, boxes = decode_outputs(anchors, apm_deltas, det_deltas, variances)
    boxes = cxcywh_to_xyxy(boxes).clamp(0.0, 1.0)
    fg = cls_scores[:, 1:].float()
    num_classes = fg.shape[1]
    cand = fg >= o.conf
    if apm_scores is not None:
        cand &= (apm_scores >= o.theta)[:, None]
    flat = torch.nonzero(cand.flatten()).flatten()  # ascending flat index i*C + c-1
    flat_scores = fg.flatten()[flat]
    order = torch.sort(flat_scores, descending=True, stable=True).indices[:o.pre_nms_top_k]
    flat = flat[order]
    anchor_idx = flat // num_classes
    labels = flat % num_classes + 1
    out_b, out_s, out_l, out_a = [], [], [], []
    for c in torch.unique(labels).tolist():  # ascending
        sel = labels == c
        a_idx = torch.sort(anchor_idx[sel]).values  # ascending anchor index
        keep, new_scores = soft_nms(
            boxes[a_idx], fg[a_idx, c - 1], NMS_METHODS[o.nms], o.iou, o.sigma, o.nms_floor
        )
        out_b.append(boxes[a_idx[keep]])
        out_s.append(new_scores)
        out_l.append(torch.full_like(keep, c))
        out_a.append(a_idx[keep])
    if not out_s:
        z = torch.zeros(0, dtype=torch.int64)
        return {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": z, "anchor_idx": z.clone()}
    scores = torch.cat(out_s)
    order = torch.sort(scores, descending=True, stable=True).indices[:o.max_det]
    if o.agnostic_iou is not None:  # one box per object, whatever its class (greedy, by score)
        from torchvision.ops import nms

        order = order[nms(torch.cat(out_b)[order].float(), scores[order].float(), o.agnostic_iou)]
    return {
        "boxes": torch.cat(out_b)[order].float(),
        "scores": scores[order],
        "labels": torch.cat(out_l)[order],
        "anchor_idx": torch.cat(out_a)[order],
    }


def probabilities(outputs) -> tuple[Tensor | None, Tensor]:
    """APM sigmoid and class softmax of raw outputs (what the exported model emits)."""
    apm = torch.sigmoid(outputs.apm_logits) if outputs.apm_logits is not None else None
    return apm, torch.softmax(outputs.cls_logits.float(), dim=-1)


@torch.no_grad()
def postprocess(
    outputs,
    anchors: Tensor,
    image_sizes: list[tuple[int, int]] | None = None,
    options: PostprocessOptions = PostprocessOptions(),
    variances: Sequence[float] = DEFAULT_VARIANCES,
) -> list[dict[str, Tensor]]:
    """Batch post-processing of raw :class:`~training.model.PADetOutputs`.

    ``image_sizes`` (list of (h, w)) scales boxes to those pixels; otherwise boxes stay in 0..1.
    """
    apm, cls = probabilities(outputs)
    results = []
    for b in range(cls.shape[0]):
        r = postprocess_single(
            anchors.float().cpu(),
            apm[b].float().cpu() if apm is not None else None,
            outputs.apm_deltas[b].float().cpu() if outputs.apm_deltas is not None else None,
            cls[b].cpu(),
            outputs.det_deltas[b].float().cpu(),
            options,
            variances,
        )
        if image_sizes is not None:
            h, w = image_sizes[b]
            r["boxes"] = r["boxes"] * torch.tensor([w, h, w, h], dtype=torch.float32)
        results.append(r)
    return results
