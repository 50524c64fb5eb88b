"""The post-processing options: one frozen, validated value that the training config, the model
metadata, the Detector and all three implementations (torch, numpy, Cython) pass around whole.

Torch-free, stdlib only. The algorithm they parameterise is docs/postprocess_contract.md.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from numbers import Integral, Real
from typing import Any, Literal

Nms = Literal["soft-linear", "soft-gaussian", "hard"]

#: ``nms`` name → the decay its soft-NMS uses (the ``method`` of the ``soft_nms`` kernels).
NMS_METHODS: dict[str, str] = {"soft-linear": "linear", "soft-gaussian": "gaussian", "hard": "hard"}

#: Flat names that metadata format 1 and PADetConfig dicts of older checkpoints used, → field.
LEGACY_NAMES: dict[str, str] = {
    "theta": "theta",
    "conf_threshold": "conf",
    "nms_method": "nms",
    "nms_iou": "iou",
    "nms_sigma": "sigma",
    "nms_score_threshold": "nms_floor",
    "pre_nms_top_k": "pre_nms_top_k",
    "max_det": "max_det",
}
_LEGACY_NMS = {method: name for name, method in NMS_METHODS.items()}


@dataclass(frozen=True, kw_only=True)
class PostprocessOptions:
    """How raw PADet outputs become detections (paper §3.3 "Inference"; the defaults are its values).

    The names are the ones Ultralytics and OpenVINO users know, and they are the same everywhere:
    ``Detector(conf=...)``, ``det.with_options(iou=...)``, ``PADetConfig.postprocess``, the
    ``"postprocess"`` object of the model metadata and ``model.postprocess(out, max_det=...)``.

    Attributes:
        theta: θ, the APM "is positive" probability below which an anchor is dropped before any
            class is scored (ignored for models without APM_C). Training uses the same θ to tell
            the detection loss which negatives are easy. In [0, 1].
        conf: minimum class probability of a candidate (anchor, class) pair. In [0, 1].
        nms: ``"soft-linear"`` (the paper's choice), ``"soft-gaussian"`` or ``"hard"`` (classic
            greedy NMS), applied class by class.
        iou: IoU above which a box is decayed (soft-linear) or removed (hard); soft-gaussian
            decays every overlap and ignores it. In [0, 1].
        sigma: σ of soft-gaussian, score × exp(-IoU² / σ). Finite and > 0.
        nms_floor: a box whose score soft-NMS has decayed below this is dropped. In [0, 1].
        pre_nms_top_k: candidates kept (best scores first) before NMS. An integer >= 1.
        max_det: detections returned per image. An integer >= 1.
        agnostic_iou: None (the paper: NMS class by class only), or an IoU in [0, 1]: after the
            class-wise NMS and ``max_det``, a box overlapping a higher-scoring one of *any* class
            by more than this is dropped, so that one object shows one box (for display; models
            that confuse similar classes otherwise show two or three boxes on one object).

    Invalid values raise ValueError naming the field. Box variances are not options: they are
    fixed by how the network was trained, so they travel with the anchors.
    """

    theta: float = 0.01
    conf: float = 0.01
    nms: Nms = "soft-linear"
    iou: float = 0.3
    sigma: float = 0.5
    nms_floor: float = 0.001
    pre_nms_top_k: int = 1000
    max_det: int = 300
    agnostic_iou: float | None = None

    def __post_init__(self) -> None:
        for name in ("theta", "conf", "iou", "nms_floor"):
            value = _real(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.agnostic_iou is not None and not 0.0 <= _real(self, "agnostic_iou") <= 1.0:
            raise ValueError(f"agnostic_iou must be None or in [0, 1], got {self.agnostic_iou!r}")
        if not _real(self, "sigma") > 0.0:
            raise ValueError(f"sigma must be > 0, got {self.sigma!r}")
        if self.nms not in NMS_METHODS:
            raise ValueError(f"nms must be one of {sorted(NMS_METHODS)}, got {self.nms!r}")
        for name in ("pre_nms_top_k", "max_det"):
            value = getattr(self, name)
            ok = isinstance(value, Integral) or (isinstance(value, float) and value.is_integer())
            if isinstance(value, bool) or not ok or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))

    def replace(self, **changes: Any) -> "PostprocessOptions":
        """A copy with ``changes`` applied (validated like the constructor)."""
        unknown = set(changes) - _FIELD_NAMES
        if unknown:
            raise TypeError(f"unknown post-processing option(s) {sorted(unknown)}; expected some of {sorted(_FIELD_NAMES)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PostprocessOptions":
        """Inverse of :meth:`to_dict`; unknown keys raise TypeError."""
        return cls().replace(**d)

    @classmethod
    def from_legacy(cls, d: Mapping[str, Any]) -> "PostprocessOptions":
        """The options of a flat document written before this class (keys :data:`LEGACY_NAMES`,
        ``nms_method`` "linear" | "gaussian" | "hard"); other keys are ignored."""
        changes = {LEGACY_NAMES[k]: v for k, v in d.items() if k in LEGACY_NAMES}
        if "nms" in changes:
            changes["nms"] = _LEGACY_NMS.get(changes["nms"], changes["nms"])
        return cls().replace(**changes)


_FIELD_NAMES = frozenset(f.name for f in fields(PostprocessOptions))


def _real(opts: PostprocessOptions, name: str) -> float:
    """Field ``name`` as a float (stored back as one), or ValueError unless it is a finite number."""
    value = getattr(opts, name)
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    object.__setattr__(opts, name, float(value))
    return float(value)


__all__ = ["PostprocessOptions", "NMS_METHODS", "LEGACY_NAMES", "Nms"]
