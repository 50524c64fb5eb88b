"""What travels inside every exported PADet model file (ONNX ``metadata_props``, OpenVINO
``rt_info``): one JSON document under the key :data:`METADATA_KEY`. The exporter writes it, the
SDK reads it; nothing else travels with the model.

The exported graph (see README "Export"): input ``images`` float32 (B, 3, S, S), already
normalised with ``mean``/``std`` in ``pixel_order``; outputs, all float32, N anchors:
``apm_scores`` (B, N) sigmoid probabilities, ``apm_deltas`` (B, N, 4), ``cls_scores`` (B, N, C+1)
softmax probabilities (column 0 background), ``det_deltas`` (B, N, 4). Ablation variants without
APM_C / APM_R omit ``apm_scores`` / ``apm_deltas``. Box decoding and soft-NMS stay outside the
graph, owned by ``padet_sdk.native``.

Format 2 (written now) keeps the post-processing settings in one object, ``"postprocess"``, with
the fields of :class:`~padet_sdk.options.PostprocessOptions` (``theta``, ``conf``, ``nms``,
``iou``, ``sigma``, ``nms_floor``, ``pre_nms_top_k``, ``max_det``). Format 1 had them as flat
keys (``theta``, ``conf_threshold``, ``nms_method``: "linear" ..., ``nms_iou``, ``nms_sigma``,
``nms_score_threshold``, ``pre_nms_top_k``, ``max_det``); such files still load, and a loaded
document is always in the current format.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from .anchors import generate_anchors
from .options import PostprocessOptions

METADATA_KEY = "padet"
FORMAT_VERSION = 2
#: formats :meth:`ModelMetadata.from_json` reads
READABLE_VERSIONS = (1, 2)
INPUT_NAME = "images"
OUTPUT_NAMES = ("apm_scores", "apm_deltas", "cls_scores", "det_deltas")


class MetadataError(ValueError):
    """The model file has no (or unusable) PADet metadata."""


@dataclass(frozen=True, kw_only=True)
class ModelMetadata:
    class_names: tuple[str, ...]
    input_size: int
    pixel_order: str = "RGB"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    feature_sizes: tuple[int, ...]
    anchor_scales: tuple[float, ...]
    anchor_extra_ratios: tuple[tuple[float, ...], ...]
    variances: tuple[float, float] = (0.1, 0.2)
    outputs: tuple[str, ...] = OUTPUT_NAMES
    postprocess: PostprocessOptions = field(default_factory=PostprocessOptions)
    preset: str = "custom"
    model_version: str = "0"
    precision: str = "fp32"
    #: INT8 files: how they were quantized ("ort:u8s8-rr", "nncf:overflow-fix=enable") and the
    #: CPUs they run right on ("vnni": VNNI only; "avx2": any x86; see padet_sdk.cpu); "" for
    #: float files and INT8 files written before these fields
    quant_scheme: str = ""
    quant_target_cpu: str = ""
    trained: bool = True
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.pixel_order not in ("RGB", "BGR"):
            raise MetadataError(f"pixel_order must be RGB or BGR, got {self.pixel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise MetadataError("mean and std need 3 values")
        if not {"cls_scores", "det_deltas"} <= set(self.outputs):
            raise MetadataError(f"outputs must include cls_scores and det_deltas, got {self.outputs}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_anchors(self) -> int:
        return sum((2 + len(r)) * f * f for r, f in zip(self.anchor_extra_ratios, self.feature_sizes))

    def anchors(self) -> np.ndarray:
        """(N, 4) cxcywh anchors in 0..1, identical to the training model's ``anchors``."""
        return generate_anchors(self.feature_sizes, self.anchor_scales, self.anchor_extra_ratios)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        try:
            d: dict[str, Any] = json.loads(text)
        except (TypeError, json.JSONDecodeError) as e:
            raise MetadataError(f"PADet metadata is not valid JSON: {e}") from e
        if not isinstance(d, dict):
            raise MetadataError("PADet metadata must be a JSON object")
        version = d.get("format_version")
        if version not in READABLE_VERSIONS:
            raise MetadataError(
                f"PADet metadata format {version} is not supported by this SDK (it reads formats "
                f"{', '.join(map(str, READABLE_VERSIONS))}); re-export the model with a matching padet version"
            )
        try:
            if version == 1:
                post = PostprocessOptions.from_legacy(d)
            else:
                known_post = {f.name for f in fields(PostprocessOptions)}
                post = PostprocessOptions.from_dict(
                    {k: v for k, v in dict(d.get("postprocess") or {}).items() if k in known_post}
                )
        except (TypeError, ValueError) as e:
            raise MetadataError(f"PADet metadata has unusable post-processing options: {e}") from e
        known = {f.name for f in fields(cls)} - {"postprocess", "format_version"}
        d = {k: v for k, v in d.items() if k in known}
        for k in ("class_names", "mean", "std", "feature_sizes", "anchor_scales", "variances", "outputs"):
            if k in d:
                d[k] = tuple(d[k])
        if "anchor_extra_ratios" in d:
            d["anchor_extra_ratios"] = tuple(tuple(r) for r in d["anchor_extra_ratios"])
        try:
            return cls(**d, postprocess=post)
        except TypeError as e:
            raise MetadataError(f"PADet metadata is incomplete: {e}") from e
