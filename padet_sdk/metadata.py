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
PRECISIONS = ("fp32", "fp16", "int8")


class MetadataError(ValueError):
    """The model file has no (or unusable) PADet metadata."""


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and bool(np.isfinite(v))


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
        """Every field checked, so that a model loads completely or not at all (never a NaN box,
        a letter-split class list or an IndexError at the first frame). MetadataError names the field."""
        names = self.class_names
        if not names or not all(isinstance(n, str) and n for n in names):
            raise MetadataError(f"class_names must be a non-empty list of non-empty strings, got {names!r}")
        if len(set(names)) != len(names):
            raise MetadataError(f"class_names has duplicates: {names!r}")
        if not _is_int(self.input_size) or self.input_size < 1:
            raise MetadataError(f"input_size must be a positive integer, got {self.input_size!r}")
        if self.pixel_order not in ("RGB", "BGR"):
            raise MetadataError(f"pixel_order must be RGB or BGR, got {self.pixel_order!r}")
        for name, n in (("mean", 3), ("std", 3), ("variances", 2)):
            values = getattr(self, name)
            if len(values) != n or not all(_is_finite(v) for v in values):
                raise MetadataError(f"{name} must be {n} finite numbers, got {values!r}")
        if any(v == 0 for v in self.std):
            raise MetadataError(f"std must not contain 0 (it divides the pixels), got {self.std!r}")
        if any(v <= 0 for v in self.variances):
            raise MetadataError(f"variances must be > 0, got {self.variances!r}")
        levels = len(self.feature_sizes)
        if not levels or not all(_is_int(f) and f >= 1 for f in self.feature_sizes):
            raise MetadataError(f"feature_sizes must be a non-empty list of positive integers, got {self.feature_sizes!r}")
        if len(self.anchor_scales) != levels + 1 or not all(_is_finite(v) and v > 0 for v in self.anchor_scales):
            raise MetadataError(f"anchor_scales must be {levels + 1} positive finite numbers (one per level + 1), "
                                f"got {self.anchor_scales!r}")  # fmt: skip
        ratios = self.anchor_extra_ratios
        if len(ratios) != levels or not all(all(_is_finite(r) and r > 0 for r in level) for level in ratios):
            raise MetadataError(f"anchor_extra_ratios must be {levels} lists of positive finite numbers (one per level), "
                                f"got {ratios!r}")  # fmt: skip
        if not all(o in OUTPUT_NAMES for o in self.outputs) or len(set(self.outputs)) != len(self.outputs):
            raise MetadataError(f"outputs must be distinct names among {list(OUTPUT_NAMES)}, got {self.outputs!r}")
        if not {"cls_scores", "det_deltas"} <= set(self.outputs):
            raise MetadataError(f"outputs must include cls_scores and det_deltas, got {self.outputs}")
        if not isinstance(self.postprocess, PostprocessOptions):
            raise MetadataError(f"postprocess must be PostprocessOptions, got {type(self.postprocess).__name__}")
        for name in ("preset", "model_version", "precision", "quant_scheme", "quant_target_cpu"):
            if not isinstance(getattr(self, name), str):
                raise MetadataError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.precision not in PRECISIONS:
            raise MetadataError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.quant_target_cpu not in ("", "vnni", "avx2"):
            raise MetadataError(f"quant_target_cpu must be '', 'vnni' or 'avx2', got {self.quant_target_cpu!r}")
        if not isinstance(self.trained, bool):
            raise MetadataError(f"trained must be true or false, got {self.trained!r}")

    def output_shape(self, name: str) -> tuple[int, ...]:
        """(N,) or (N, K) of output ``name`` per image: what the graph must produce for this metadata."""
        n = self.num_anchors
        return (n,) if name == "apm_scores" else (n, self.num_classes + 1 if name == "cls_scores" else 4)

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
        except (TypeError, ValueError, AttributeError) as e:
            raise MetadataError(f"PADet metadata has unusable post-processing options: {e}") from e
        known = {f.name for f in fields(cls)} - {"postprocess", "format_version"}
        d = {k: v for k, v in d.items() if k in known}
        for k in ("class_names", "mean", "std", "feature_sizes", "anchor_scales", "variances", "outputs", "anchor_extra_ratios"):
            if k in d:  # a JSON array; a string would be split into letters
                if not isinstance(d[k], list):
                    raise MetadataError(f"PADet metadata field {k} must be a list, got {type(d[k]).__name__} {d[k]!r}")
                d[k] = tuple(d[k])
        if "anchor_extra_ratios" in d:
            if not all(isinstance(r, list) for r in d["anchor_extra_ratios"]):
                raise MetadataError(f"PADet metadata field anchor_extra_ratios must be a list of lists, got {d['anchor_extra_ratios']!r}")
            d["anchor_extra_ratios"] = tuple(tuple(r) for r in d["anchor_extra_ratios"])
        try:
            return cls(**d, postprocess=post)
        except TypeError as e:
            missing = sorted({"class_names", "input_size", "feature_sizes", "anchor_scales", "anchor_extra_ratios"} - set(d))
            raise MetadataError(f"PADet metadata is incomplete: missing field(s) {missing}" if missing
                                else f"PADet metadata has an unusable field: {e}") from e  # fmt: skip
