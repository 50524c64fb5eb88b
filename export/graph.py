"""What is exported: the network up to per-anchor probabilities and deltas.

Sigmoid/softmax are inside the graph (cheap there, and the engines fuse them); box decoding and
soft-NMS are not — they are data-dependent, and ``padet_sdk.native`` is their single owner.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from padet_sdk.metadata import OUTPUT_NAMES, ModelMetadata
from training.model import PADet


class InferenceGraph(nn.Module):
    """Wraps a :class:`PADet` so that ``forward(images)`` returns the exported outputs."""

    def __init__(self, model: PADet) -> None:
        super().__init__()
        self.model = model

    @property
    def output_names(self) -> list[str]:
        cfg = self.model.cfg
        present = {"apm_scores": cfg.use_apm_score, "apm_deltas": cfg.use_apm_reg}
        return [n for n in OUTPUT_NAMES if present.get(n, True)]

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        out = self.model(images)
        res = []
        if out.apm_logits is not None:
            res.append(torch.sigmoid(out.apm_logits))
        if out.apm_deltas is not None:
            res.append(out.apm_deltas)
        res.append(torch.softmax(out.cls_logits, dim=-1))
        res.append(out.det_deltas)
        return tuple(res)


def build_metadata(
    model: PADet, class_names: list[str] | tuple[str, ...], *, model_version: str = "0", precision: str = "fp32",
    trained: bool = True,
) -> ModelMetadata:
    """The metadata document for ``model`` (see :mod:`padet_sdk.metadata`)."""
    cfg = model.cfg
    if len(class_names) != cfg.num_classes:
        raise ValueError(f"{len(class_names)} class names for a model with {cfg.num_classes} classes")
    return ModelMetadata(
        class_names=tuple(class_names),
        input_size=cfg.input_size,
        pixel_order=cfg.pixel_order,
        mean=tuple(cfg.mean),
        std=tuple(cfg.std),
        feature_sizes=tuple(cfg.feature_sizes),
        anchor_scales=tuple(cfg.anchors.scales),
        anchor_extra_ratios=tuple(tuple(cfg.anchors.ratios(i)) for i in range(cfg.num_levels)),
        variances=tuple(cfg.anchors.variances),
        outputs=tuple(InferenceGraph(model).output_names),
        postprocess=cfg.postprocess,
        preset=cfg.name,
        model_version=model_version,
        precision=precision,
        trained=trained,
    )
