"""Showing results: whether this OpenCV can show a window (the headless wheel cannot, and the
examples and ``padet detect`` say so instead of crashing), and the tiled view of several sources."""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence

import numpy as np

WINDOW = "PADet"


def gui_problem(window: str = WINDOW) -> str | None:
    """Why no window can be shown, or None if one can (a window named ``window`` is then open)."""
    import cv2

    gui = ""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            gui = line.split(":", 1)[1].strip()
            break
    if gui.upper() == "NONE":
        return (
            "this OpenCV is headless (built without GUI support), so no window can be shown; "
            "install `opencv-python` instead of `opencv-python-headless` for a window "
            "(pip uninstall opencv-python-headless && pip install opencv-python)"
        )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display available (DISPLAY/WAYLAND_DISPLAY unset), so no window can be shown"
    try:
        cv2.namedWindow(window, cv2.WINDOW_NORMAL)
    except cv2.error as e:
        return f"OpenCV cannot open a window: {str(e).strip().splitlines()[-1]}"
    return None


def tile(images: Sequence[np.ndarray], cols: int | None = None, width: int = 1280) -> np.ndarray:
    """Several BGR frames in one ``width``-pixel-wide image, ``cols`` per row (default: a square
    grid), each scaled to the first frame's aspect ratio, so one window shows every source."""
    import cv2

    if not images:
        raise ValueError("tile() needs at least one image")
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    h0, w0 = images[0].shape[:2]
    tw = width // cols
    th = max(1, round(h0 * tw / w0))
    sheet = np.zeros((rows * th, cols * tw, 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        sheet[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
    return sheet
