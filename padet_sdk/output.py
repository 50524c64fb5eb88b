"""What leaves the pipeline besides results: the annotated video file and the status line
drawn on frames.

:class:`VideoOutput` encodes on its own thread, and takes a drawing function instead of a
drawn frame, so that drawing and encoding run beside detection rather than after it. Boxes and
labels are drawn by :meth:`padet_sdk.detections.Detections.draw`.
"""
from __future__ import annotations

import os
import queue
import threading
import weakref
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import SourceError


class VideoOutput:
    """``cv2.VideoWriter`` (mp4v) fed by a thread, so drawing and encoding overlap detection
    (OpenCV releases the GIL). Frames of another size than the first are resized to it (a writer
    has one frame size)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        import cv2

        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SourceError(f"cannot write video {self.path}: cannot create the folder {self.path.parent} ({e.strerror or e})") from e
        self.size = size
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
        self._writer = cv2.VideoWriter(str(self.path), fourcc, float(fps), size)
        if not self._writer.isOpened():
            raise SourceError(f"cannot write video {self.path} (mp4v, {size[0]}x{size[1]} @ {fps:g} fps); use .mp4 or .avi")
        self._queue: queue.Queue[np.ndarray | Callable[[], np.ndarray] | None] = queue.Queue(maxsize=8)
        self.frames = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="padet-writer", daemon=True)
        self._thread.start()
        weakref.finalize(self, _drain, self._queue, self._thread)  # at exit: flush and close the file

    def _run(self) -> None:
        import cv2

        try:
            while (item := self._queue.get()) is not None:
                if self.error is not None:
                    continue  # keep draining so that the producer never blocks on a dead writer
                try:
                    img = item() if callable(item) else item
                    if (img.shape[1], img.shape[0]) != self.size:
                        img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
                    self._writer.write(img)
                    self.frames += 1
                except BaseException as e:  # noqa: BLE001 - reported by close()
                    self.error = e
        finally:
            self._writer.release()

    def write(self, img: np.ndarray | Callable[[], np.ndarray]) -> None:
        """Queue a frame, or a function that draws it (called on the writer thread)."""
        self._queue.put(img)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self.error is not None:
            err, self.error = self.error, None
            raise SourceError(f"writing {self.path} failed: {err}") from err


def _drain(q: "queue.Queue", thread: threading.Thread) -> None:
    if thread.is_alive() and thread is not threading.current_thread():
        q.put(None)
        thread.join()


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """``a`` and ``b`` name one existing file (same path, a symlink or a hard link to it)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # either missing, unreadable, or not a path at all
        return False


def refuse_overwriting_input(source: object, *outputs: str | os.PathLike | None) -> None:
    """Raise :class:`SourceError` before anything is written if an output would replace the
    input file ``source`` (the same path, or another path to the same file)."""
    if not isinstance(source, (str, os.PathLike)) or "://" in str(source) or str(source).strip().isdigit():
        return  # a camera, a URL: nothing on disk to overwrite
    for out in outputs:
        if out is not None and same_file(source, out):
            raise SourceError(f"refusing to overwrite the input {source} with the output {out} (the same file); "
                              "choose another output path")  # fmt: skip


def draw_overlay(img: np.ndarray, text: str) -> np.ndarray:
    """White-on-black status line in the top-left corner (in place)."""
    import cv2

    scale = max(0.4, min(img.shape[1] / 900.0, 1.0))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(img, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), cv2.FILLED)
    cv2.putText(img, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img


__all__ = ["VideoOutput", "draw_overlay", "refuse_overwriting_input", "same_file"]
