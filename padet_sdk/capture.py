"""OpenCV captures for :mod:`padet_sdk.sources`: opening a camera or a URL with its timeouts,
retrying a URL by the reconnect policy, and reading frames from a ``cv2.VideoCapture``.

Kept apart from :class:`~padet_sdk.sources.FrameSource` (which only sees ``grab``/``release``
functions) so that another reader can stand in for OpenCV.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import SourceError
from .reconnect import ReconnectPolicy, retry

Grab = Callable[[], "np.ndarray | None"]


def grabber(cap: Any) -> Grab:
    """``grab()`` of a capture: the next BGR frame, or None when it fails or ends."""

    def grab() -> np.ndarray | None:
        ok, img = cap.read()
        return img if ok and img is not None and img.size else None

    return grab


def opened(cap: Any) -> Any:
    """``cap`` if it opened, else None (released)."""
    if cap.isOpened():
        return cap
    cap.release()
    return None


def reopener(open_capture: Callable[[], Any]) -> Callable[[], tuple[Grab, Callable[[], None]] | None]:
    """A ``reopen`` for :class:`~padet_sdk.sources.FrameSource`: a fresh ``(grab, release)``, or None."""

    def reopen() -> tuple[Grab, Callable[[], None]] | None:
        cap = open_capture()
        return (grabber(cap), cap.release) if cap is not None else None

    return reopen


def capture_info(cap: Any, live: bool) -> tuple[float | None, int | None]:
    """The capture's frame rate and frame count, None where it gives none that makes sense."""
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else 0
    return (fps if fps and math.isfinite(fps) and 0 < fps < 1000 else None), (count if count > 0 else None)


def open_camera(idx: int) -> tuple[Any, Callable[[], Any]]:
    """An open capture of camera ``idx`` and a function that opens it again (or returns None)."""
    import cv2

    cap = cv2.VideoCapture(idx)
    if not cap.isOpened():
        raise SourceError(
            f"cannot open camera {idx}: no such device, no permission, or in use by another program "
            "(on Linux list cameras with `ls /dev/video*` or `v4l2-ctl --list-devices`)"
        )
    return cap, lambda: opened(cv2.VideoCapture(idx))


def open_url(url: str, *, read_timeout: float, policy: ReconnectPolicy | None) -> tuple[Any, Callable[[], Any]]:
    """An open FFmpeg capture of ``url`` and a function that opens it again (or returns None).

    FFmpeg's read timeout is ``read_timeout``, so a stalled stream returns from ``read()`` and
    can be re-opened; with a ``policy`` a URL that does not open is retried by it first, then
    :class:`~padet_sdk.errors.SourceError` names the attempts."""
    import cv2

    open_s = policy.open_timeout if policy is not None else 10.0
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_s * 1000), cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout * 1000)]

    def open_capture() -> Any:
        return opened(cv2.VideoCapture(url, cv2.CAP_FFMPEG, params))

    hint = "unreachable, wrong URL/credentials, or unsupported by this OpenCV's FFmpeg"
    if policy is None:
        cap = open_capture()
        if cap is None:
            raise SourceError(f"cannot open stream {url}: {hint}")
        return cap, open_capture
    cap, attempts, _ = retry(open_capture, policy, name=url, wait_first=False)
    if cap is None:
        waited = sum(policy.delay(k) for k in range(1, attempts))
        raise SourceError(f"cannot open stream {url}: {attempts} attempts over {waited:.1f} s of back-off failed ({hint})")
    return cap, open_capture


__all__ = ["Grab", "capture_info", "grabber", "open_camera", "open_url", "opened", "reopener"]
