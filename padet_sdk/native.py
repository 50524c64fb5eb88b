"""Post-processing entry points of the SDK: validated wrappers over the Cython kernels.

The kernels (``padet_sdk._native``, built from ``native/padet_native.pyx``) want C-contiguous
float32 arrays; these wrappers check shapes and convert anything else (float64, float16,
non-contiguous views) once, so that outputs of any inference engine can be passed as they are.
When the extension is not built, the same functions run on the numpy reference
(``padet_sdk.postprocess_numpy``, 20x or more slower) after a one-time RuntimeWarning.

Algorithm and tie rules: docs/postprocess_contract.md. Box formats: anchors and decoded boxes
cxcywh, NMS inputs and outputs xyxy, in units of the input size.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from . import postprocess_numpy
from .boxes import DEFAULT_VARIANCES
from .options import PostprocessOptions

try:
    from . import _native
except ImportError:
    _native = None

#: Which implementation runs: "cython" (the built extension) or "numpy" (the reference).
BACKEND = "cython" if _native is not None else "numpy"

#: ``method`` of :func:`soft_nms` → the kernels' code
METHODS = {m: code for code, m in enumerate(postprocess_numpy.METHODS)}

_BUILD_HINT = (
    "padet_sdk._native is not built, so post-processing runs on the slow numpy reference; "
    "build it with `pip install -e .` or `python setup.py build_ext --inplace`"
)
_warned = False


def _warn_fallback() -> None:
    """Say once per process that the numpy fallback is in use (it is >= 20x slower)."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(_BUILD_HINT, RuntimeWarning, stacklevel=3)


def _as_f32(name: str, x: object, shape: tuple[int | None, ...]) -> np.ndarray:
    """x as a C-contiguous float32 array with the given shape (None = any size)."""
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
    if arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape)):
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_rows(n: int, **arrays: np.ndarray | None) -> None:
    for name, arr in arrays.items():
        if arr is not None and arr.shape[0] != n:
            raise ValueError(f"{name} has {arr.shape[0]} rows but there are {n} anchors/boxes")


def _check_method(method: str, sigma: float) -> int:
    """The kernel's code for ``method``; gaussian divides by sigma, so it must be > 0."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if method == "gaussian" and not sigma > 0:
        raise ValueError(f"sigma must be > 0 for the gaussian method, got {sigma}")
    return METHODS[method]


def soft_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    method: str = "linear",
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS of (n, 4) xyxy boxes with (n,) scores; method "linear", "gaussian" or "hard".

    Returns (keep int64 (m,), new_scores float32 (m,)): indices into the input in emit order
    (non-increasing score) and their decayed scores. The inputs are never modified.
    """
    b = _as_f32("boxes", boxes, (None, 4))
    s = _as_f32("scores", scores, (None,))
    _check_rows(len(b), scores=s)
    code = _check_method(method, sigma)
    if _native is None:
        _warn_fallback()
        return postprocess_numpy.soft_nms(b, s, method, iou_threshold, sigma, score_threshold)
    return _native.soft_nms(b, s, code, float(iou_threshold), float(sigma), float(score_threshold))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Greedy hard NMS of (n, 4) xyxy boxes: int64 indices kept, by score descending."""
    b = _as_f32("boxes", boxes, (None, 4))
    s = _as_f32("scores", scores, (None,))
    _check_rows(len(b), scores=s)
    if _native is None:
        _warn_fallback()
        return postprocess_numpy.nms(b, s, iou_threshold)
    return _native.nms(b, s, float(iou_threshold))


def decode_boxes(
    deltas: np.ndarray, anchors: np.ndarray, variances: Sequence[float] = DEFAULT_VARIANCES
) -> np.ndarray:
    """SSD decode of (N, 4) deltas on (N, 4) cxcywh anchors -> (N, 4) float32 cxcywh boxes."""
    d = _as_f32("deltas", deltas, (None, 4))
    a = _as_f32("anchors", anchors, (None, 4))
    _check_rows(len(a), deltas=d)
    v0, v1 = (float(v) for v in variances)
    if _native is None:
        _warn_fallback()
        return postprocess_numpy.decode_boxes(d, a, v0, v1)
    return _native.decode_boxes(d, a, v0, v1)


def postprocess(
    anchors: np.ndarray,
    apm_scores: np.ndarray | None,
    apm_deltas: np.ndarray | None,
    cls_scores: np.ndarray,
    det_deltas: np.ndarray,
    options: PostprocessOptions = PostprocessOptions(),
    variances: Sequence[float] = DEFAULT_VARIANCES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Detections of one image from the raw PADet outputs (decode, filter, class-wise soft-NMS).

    Args:
        anchors: (N, 4) cxcywh in units of the input size.
        apm_scores: (N,) APM positive probability (sigmoid applied), or None (no APM_C).
        apm_deltas: (N, 4) APM refinement deltas, or None (no APM_R).
        cls_scores: (N, C+1) softmax probabilities, column 0 = background.
        det_deltas: (N, 4) detection deltas relative to the promoted anchors.
        options: θ, conf, NMS and top-k settings (validated when they were made).
        variances: (v0, v1) of the box coding the network was trained with.
    Returns:
        boxes (M, 4) float32 xyxy clipped to [0, 1], scores (M,) float32 (descending),
        labels (M,) int64 in 1..C, anchor indices (M,) int64; M <= options.max_det.
    """
    if not isinstance(options, PostprocessOptions):
        raise TypeError(f"options must be a PostprocessOptions, got {type(options).__name__}")
    a = _as_f32("anchors", anchors, (None, 4))
    cls = _as_f32("cls_scores", cls_scores, (None, None))
    if cls.shape[1] < 2:
        raise ValueError(f"cls_scores must be (N, C+1) with C >= 1 (column 0 = background), got {cls.shape}")
    det = _as_f32("det_deltas", det_deltas, (None, 4))
    apm_s = None if apm_scores is None else _as_f32("apm_scores", apm_scores, (None,))
    apm_d = None if apm_deltas is None else _as_f32("apm_deltas", apm_deltas, (None, 4))
    _check_rows(len(a), cls_scores=cls, det_deltas=det, apm_scores=apm_s, apm_deltas=apm_d)
    v = tuple(float(x) for x in variances)
    if _native is None:
        _warn_fallback()
        out = postprocess_numpy.postprocess(a, apm_s, apm_d, cls, det, options, v)
    else:
        out = _native.postprocess(a, apm_s, apm_d, cls, det, options, v)
    if options.agnostic_iou is not None and len(out[1]) > 1:
        keep = postprocess_numpy.nms(out[0], out[1], options.agnostic_iou)  # by score, any class
        out = tuple(x[keep] for x in out)
    return out
