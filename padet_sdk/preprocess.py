"""Frames to network input: the SDK's one pre-processing function, :func:`to_blob`.

``to_blob(frames, S, pixel_order, mean, std)`` turns HxWx3 uint8 BGR frames (any sizes, any
strides) into the (B, 3, S, S) float32 blob the exported graph takes: ``cv2.resize``
(INTER_LINEAR) to S x S, channels in ``pixel_order``, ``(x / 255 - mean) / std``. This is the
recipe training uses. :class:`~padet_sdk.detector.Detector` calls it, and anything else that
feeds the graph (INT8 calibration, tests) should call it too, so that the recipe exists once.

It runs as a single ``cv2.dnn.blobFromImage(s)WithParams`` call, which writes the blob directly
with no intermediate images. OpenCV builds without the ``dnn`` module (minimal builds for
devices) get :func:`to_blob_numpy`, which gives the same blob and is tested to.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from .errors import InvalidFrameError

Triple = tuple[float, float, float]


def check_frame(frame: Any, where: str = "frame") -> np.ndarray:
    """``frame`` if it is an HxWx3 uint8 array (any strides), else :class:`InvalidFrameError`
    saying how to convert it."""
    if frame is None:
        raise InvalidFrameError(
            f"{where} is None: cv2.imread returns None for a missing/unreadable file and "
            "VideoCapture.read() returns (False, None) at the end of a stream"
        )
    if isinstance(frame, (bool, np.bool_)):
        raise InvalidFrameError(
            f"{where} is a bool: pass the frame of VideoCapture.read(), not its (ok, frame) tuple"
        )
    if not isinstance(frame, np.ndarray):
        raise InvalidFrameError(
            f"{where} must be a numpy array (H, W, 3) uint8 in BGR order, got {type(frame).__name__}; "
            + ("for a file path read it first with cv2.imread(path)" if isinstance(frame, (str, bytes, os.PathLike))
               else "for a PIL image use cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)")
        )
    shape = frame.shape
    if frame.ndim == 2 or (frame.ndim == 3 and shape[2] == 1):
        raise InvalidFrameError(
            f"{where} is single-channel (shape {shape}); the detector expects 3-channel BGR: "
            "convert with cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)"
        )
    if frame.ndim != 3:
        raise InvalidFrameError(
            f"{where} must have shape (H, W, 3), got {frame.ndim} dimensions {shape}; "
            "pass a list of frames for a batch, not a stacked 4-D array"
            if frame.ndim == 4 else f"{where} must have shape (H, W, 3), got {shape}"
        )
    if shape[2] == 4:
        raise InvalidFrameError(
            f"{where} has 4 channels (BGRA, shape {shape}); drop alpha with cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)"
        )
    if shape[2] != 3:
        raise InvalidFrameError(f"{where} must have 3 channels (BGR), got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise InvalidFrameError(f"{where} is empty (shape {shape}); check that the image/video read succeeded")
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating):
            hint = (
                "if it holds 0..1 values use (frame * 255).round().clip(0, 255).astype(np.uint8); "
                "if 0..255, frame.round().clip(0, 255).astype(np.uint8)"
            )
        else:
            hint = "scale it to 0..255 and convert with .astype(np.uint8) (e.g. cv2.convertScaleAbs)"
        raise InvalidFrameError(f"{where} has dtype {frame.dtype}; the detector expects uint8 BGR pixels: {hint}")
    return frame


def _check_frames(frames: Sequence[Any]) -> None:
    for i, f in enumerate(frames):
        check_frame(f, "frame" if len(frames) == 1 else f"frame {i}")


@lru_cache(maxsize=16)
def _blob_params(input_size: int, pixel_order: str, mean: Triple, std: Triple) -> Any:
    """``cv2.dnn.Image2BlobParams`` for the recipe, or None when this OpenCV has no
    ``blobFromImageWithParams``. Cached: a detector asks for the same ones on every frame."""
    import cv2

    if not hasattr(getattr(cv2, "dnn", None), "blobFromImageWithParams"):
        return None
    p = cv2.dnn.Image2BlobParams()
    p.size = (input_size, input_size)
    # blob = (pixel - mean) * scalefactor, both given in the model's channel order
    p.mean = tuple(255.0 * m for m in mean) + (0.0,)
    p.scalefactor = tuple(1.0 / (255.0 * sd) for sd in std) + (0.0,)
    p.swapRB = pixel_order == "RGB"
    p.ddepth = cv2.CV_32F
    p.datalayout = getattr(cv2, "DNN_LAYOUT_NCHW", None) or cv2.dnn.DNN_LAYOUT_NCHW
    p.paddingmode = cv2.dnn.DNN_PMODE_NULL  # plain resize to S x S (what training does)
    return p


def _recipe(input_size: int, pixel_order: str, mean: Sequence[float], std: Sequence[float]) -> tuple[int, str, Triple, Triple]:
    if pixel_order not in ("RGB", "BGR"):
        raise ValueError(f"pixel_order must be RGB or BGR, got {pixel_order!r}")
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values, got {len(mean)} and {len(std)}")
    m = (float(mean[0]), float(mean[1]), float(mean[2]))
    s = (float(std[0]), float(std[1]), float(std[2]))
    return int(input_size), pixel_order, m, s


def to_blob(
    frames: Sequence[np.ndarray], input_size: int, pixel_order: str, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """(B, 3, S, S) float32 network input of B BGR uint8 frames.

    Args:
        frames: HxWx3 uint8 BGR images; sizes may differ, non-contiguous views are fine.
        input_size: S, the network's square input side (``ModelMetadata.input_size``).
        pixel_order: "RGB" (channels swapped from BGR) or "BGR", as the model was trained.
        mean, std: per channel of ``pixel_order``, in 0..1 units.
    Returns:
        ``(resize_linear(frame, S x S)[..., order] / 255 - mean) / std``, channels first.
    Raises:
        InvalidFrameError: a frame is not HxWx3 uint8 (the message names its position).
    """
    _check_frames(frames)
    if not frames:
        return np.empty((0, 3, int(input_size), int(input_size)), np.float32)
    params = _blob_params(*_recipe(input_size, pixel_order, mean, std))
    if params is None:
        return to_blob_numpy(frames, input_size, pixel_order, mean, std)
    import cv2

    if len(frames) == 1:
        return cv2.dnn.blobFromImageWithParams(frames[0], params)
    return cv2.dnn.blobFromImagesWithParams(list(frames), params)


def to_blob_numpy(
    frames: Sequence[np.ndarray], input_size: int, pixel_order: str, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """:func:`to_blob` without ``cv2.dnn``: resize, then one multiply-subtract per channel
    written into the preallocated blob."""
    import cv2

    _check_frames(frames)
    s, order, mean, std = _recipe(input_size, pixel_order, mean, std)
    scale = [1.0 / (255.0 * sd) for sd in std]
    shift = [m / sd for m, sd in zip(mean, std)]
    src = (2, 1, 0) if order == "RGB" else (0, 1, 2)
    out = np.empty((len(frames), 3, s, s), np.float32)
    for b, f in enumerate(frames):
        r = cv2.resize(f, (s, s), interpolation=cv2.INTER_LINEAR)
        for c in range(3):
            np.multiply(r[..., src[c]], np.float32(scale[c]), out=out[b, c], casting="unsafe")
            out[b, c] -= np.float32(shift[c])
    return out


__all__ = ["check_frame", "to_blob", "to_blob_numpy"]
