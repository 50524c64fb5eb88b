"""Whether this OpenCV can show a window — the headless wheel cannot, and the examples and the
``padet detect`` command say so instead of crashing."""
from __future__ import annotations

import os
import sys

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
