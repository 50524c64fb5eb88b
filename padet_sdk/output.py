"""What leaves the pipeline besides results: the annotated video file and the status line
drawn on frames.

:class:`VideoOutput` encodes on its own thread, and takes a drawing function instead of a
drawn frame, so that drawing and encoding run beside detection rather than after it. Boxes and
labels are drawn by :meth:`padet_sdk.detections.Detections.draw`.

``.mp4`` files are H.264 (libx264 through PyAV, whose wheels carry FFmpeg with it), which
browsers and phones play; where PyAV is missing they fall back to OpenCV's mp4v (the OpenCV
wheels have no H.264 encoder). ``.avi`` is MJPG through OpenCV.
"""
from __future__ import annotations

import importlib.util
import os
import queue
import threading
import weakref
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import SourceError


#: libx264 settings of H.264 outputs. "ultrafast" kept the pipeline at least as fast as mp4v
#: with files no larger (benchmarks/bench_video_io.py, README "Cameras"); "veryfast" makes files
#: 2-3x smaller for 20-30 % of the pipeline's FPS on a 2-core CPU.
X264_OPTIONS = {"preset": "ultrafast", "crf": "23"}
H264_CONTAINERS = (".mp4", ".mkv", ".mov")


def have_pyav() -> bool:
    """Whether PyAV (``av``) is installed, hence H.264 outputs."""
    return importlib.util.find_spec("av") is not None


def default_codec(path: str | Path) -> str:
    """The codec :class:`VideoOutput` writes ``path`` with: "h264" (PyAV) for .mp4/.mkv/.mov
    when PyAV is installed, "MJPG" for .avi, else "mp4v" (OpenCV)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".avi":
        return "MJPG"
    return "h264" if suffix in H264_CONTAINERS and have_pyav() else "mp4v"


class _AvWriter:
    """H.264 (yuv420p, browser-playable) through PyAV; ``size`` must be even."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], threads: int) -> None:
        import av
        from fractions import Fraction

        self._container = av.open(str(path), "w", options={"movflags": "+faststart"} if path.suffix.lower() != ".mkv" else {})
        try:
            self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            self._stream.width, self._stream.height = size
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = dict(X264_OPTIONS)
            self._stream.codec_context.thread_count = threads
        except BaseException:
            self._container.close()
            raise
        self._av = av

    def write(self, img: np.ndarray) -> None:
        import cv2

        # OpenCV's BGR -> I420 is about 10x faster than PyAV's swscale (benchmarks/bench_video_io.py)
        frame = self._av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        self._container.mux(self._stream.encode(frame))

    def release(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))  # flush the encoder's delayed frames
        finally:
            self._container.close()


class VideoOutput:
    """A video file fed by a thread, so drawing and encoding overlap detection (OpenCV and
    PyAV release the GIL). Frames of another size than the first are resized to it (a writer
    has one frame size; H.264 also needs an even width and height).

    ``codec``: "h264" (PyAV + libx264), "mp4v" or "MJPG" (OpenCV); default
    :func:`default_codec`. ``threads``: encoder threads for H.264 (0 = libx264's choice)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], *, codec: str | None = None, threads: int = 0) -> None:
        import cv2

        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SourceError(f"cannot write video {self.path}: cannot create the folder {self.path.parent} ({e.strerror or e})") from e
        self.codec = codec or default_codec(self.path)
        if self.codec == "h264":
            size = (max(2, size[0] - size[0] % 2), max(2, size[1] - size[1] % 2))
            try:
                self._writer: _AvWriter | cv2.VideoWriter = _AvWriter(self.path, float(fps), size, threads)
            except ImportError as e:
                raise SourceError(f"cannot write {self.path} as H.264: PyAV is not installed (pip install av)") from e
            except Exception as e:  # noqa: BLE001 - av.error.* are OSError/ValueError subclasses
                raise SourceError(f"cannot write video {self.path} (H.264, {size[0]}x{size[1]} @ {fps:g} fps): {e}") from e
        elif self.codec in ("mp4v", "MJPG"):
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.codec), float(fps), size)
            if not self._writer.isOpened():
                raise SourceError(f"cannot write video {self.path} ({self.codec}, {size[0]}x{size[1]} @ {fps:g} fps); use .mp4 or .avi")
        else:
            raise ValueError(f"codec must be 'h264', 'mp4v' or 'MJPG', got {codec!r}")
        self.size = size
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


__all__ = ["H264_CONTAINERS", "VideoOutput", "X264_OPTIONS", "default_codec", "draw_overlay", "have_pyav",
           "refuse_overwriting_input", "same_file"]
