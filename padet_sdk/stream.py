"""Video: frame sources (camera, file, URL, image folder) and an asynchronous detection pipeline.

:func:`stream` keeps several inferences in flight (OpenVINO infer requests / onnxruntime worker
threads) while the calling thread pre-/post-processes other frames, a reader thread decodes
ahead and a writer thread encodes the optional output — so on a small CPU the stages overlap
instead of adding up. Results come back in frame order.

Live sources (camera, rtsp/http URLs) keep only the newest frame: when the detector is slower
than the camera, stale frames are dropped instead of queuing up latency. Files and image
folders are never dropped from. Reads from live sources time out, so a disconnect ends the
stream with a warning instead of hanging.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from .errors import SourceError

if TYPE_CHECKING:
    from .detections import Detections
    from .detector import Detector, PendingDetections

log = logging.getLogger("padet_sdk.stream")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
#: seconds without a new frame after which a live source counts as disconnected
LIVE_READ_TIMEOUT = 10.0
#: the same for files/folders (a decoder stuck this long is broken, not slow)
FILE_READ_TIMEOUT = 60.0
#: seconds one inference may take before the pipeline gives up on it (a wedged engine)
INFER_TIMEOUT = 120.0


def available_cores() -> int:
    """CPU cores this process may run on (affinity/cgroup-aware where the OS says so)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source (0-based); gaps on live sources = dropped frames
    image: np.ndarray
    t_capture: float  # time.perf_counter() when it was read


class FrameSource:
    """Frames from a camera, file, URL or folder, decoded ahead by a reader thread.

    ``read()`` returns the next :class:`Frame` or None at the end (end of file, disconnect,
    timeout). ``live`` sources keep only the newest frame (``dropped`` counts the others).
    """

    def __init__(
        self,
        grab: Callable[[], np.ndarray | None],
        *,
        name: str,
        kind: str,
        live: bool,
        fps: float | None = None,
        frame_count: int | None = None,
        release: Callable[[], None] | None = None,
        prefetch: int = 4,
        read_timeout: float | None = None,
    ) -> None:
        self.name = name
        self.kind = kind  # "camera", "url", "file", "folder", "image"
        self.live = live
        self.fps = fps
        self.frame_count = frame_count
        self.read_timeout = read_timeout if read_timeout is not None else (LIVE_READ_TIMEOUT if live else FILE_READ_TIMEOUT)
        self.dropped = 0
        self.frames_read = 0
        self.end_reason: str | None = None
        self._grab = grab
        self._release = release
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._cond = threading.Condition()
        self._latest: Frame | None = None  # live mode
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=max(1, prefetch))  # file mode
        self._thread = threading.Thread(target=self._reader, name=f"padet-reader-{kind}", daemon=True)
        self._thread.start()

    # ---- reader thread ---------------------------------------------------------------------
    def _reader(self) -> None:
        index = 0
        try:
            while not self._stop.is_set():
                try:
                    img = self._grab()
                except Exception as e:  # noqa: BLE001 - a broken decoder ends the stream
                    log.warning("reading %s failed: %s", self.name, e)
                    img = None
                if img is None:
                    break
                frame = Frame(index, img, time.perf_counter())
                index += 1
                if self.live:
                    with self._cond:
                        if self._latest is not None:
                            self.dropped += 1  # never consumed: stale
                        self._latest = frame
                        self._cond.notify_all()
                else:
                    self._put(frame)
            self.frames_read = index
        finally:
            self.frames_read = index
            self._ended.set()
            with self._cond:
                self._cond.notify_all()
            if not self.live:
                # the end marker must get in even when the queue is full (the reader is usually
                # ahead): dropping it left the consumer to notice the end by polling, 0.5 s late
                self._put(None)
            if self._release is not None:
                try:
                    self._release()
                except Exception:  # noqa: BLE001
                    pass

    def _put(self, item: Frame | None) -> None:
        """Queue ``item``, waiting for room, unless the source is closed meanwhile."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # ---- consumer side ---------------------------------------------------------------------
    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame, or None at the end (``end_reason`` says why)."""
        timeout = self.read_timeout if timeout is None else timeout
        if self.end_reason is not None:
            return None
        if self.live:
            with self._cond:
                ok = self._cond.wait_for(lambda: self._latest is not None or self._ended.is_set(), timeout)
                if self._latest is not None:
                    frame, self._latest = self._latest, None
                    return frame
            if ok:
                self._end("disconnected" if self.kind != "image" else "end")
            else:
                self._end("timeout")
            return None
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self._queue.get(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if self._ended.is_set() and self._queue.empty():
                    self._end("end")
                    return None
                if time.monotonic() >= deadline:
                    self._end("timeout")
                    return None
                continue
            if frame is None:
                self._end("end")
                return None
            # decoded ahead of time: latency counts from now, not from the decode
            return Frame(frame.index, frame.image, time.perf_counter())

    def _end(self, reason: str) -> None:
        if self.end_reason is not None:
            return
        self.end_reason = reason
        n = self.frames_read
        if reason == "timeout":
            log.warning("no frame from %s for %.1f s: treating it as disconnected (after %d frames)", self.name, self.read_timeout, n)
        elif self.live:
            log.warning("%s %s stopped delivering frames after %d frames (disconnected or ended)", self.kind, self.name, n)
        elif self.frame_count and n < self.frame_count - 1:
            log.warning("%s ended at frame %d of %d announced (truncated or undecodable file?)", self.name, n, self.frame_count)
        else:
            log.info("end of %s after %d frames", self.name, n)

    def __iter__(self) -> Iterator[Frame]:
        while (f := self.read()) is not None:
            yield f

    def close(self) -> None:
        """Stop the reader (the capture is released by the reader thread itself, since
        VideoCapture must not be released while another thread is inside read())."""
        self._stop.set()
        if self.end_reason is None:
            self.end_reason = "closed"
        self._thread.join(timeout=2.0)
        if self._thread.is_alive():
            log.warning("reader of %s is blocked in a read; leaving it to finish in the background", self.name)

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _natural_key(p: Path) -> list[Any]:
    """frame2.png before frame10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _capture_source(cap: Any, name: str, kind: str, live: bool, read_timeout: float | None, prefetch: int) -> FrameSource:
    import cv2

    def grab() -> np.ndarray | None:
        ok, img = cap.read()
        return img if ok and img is not None and img.size else None

    fps = cap.get(cv2.CAP_PROP_FPS)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else 0
    return FrameSource(
        grab, name=name, kind=kind, live=live, fps=fps if fps and math.isfinite(fps) and 0 < fps < 1000 else None,
        frame_count=count if count > 0 else None, release=cap.release, prefetch=prefetch, read_timeout=read_timeout,
    )


def open_source(
    source: int | str | Path, *, live: bool | None = None, read_timeout: float | None = None, prefetch: int = 4
) -> FrameSource:
    """Open a camera index (``0`` or ``"0"``), a video file, an rtsp/http(s) URL, an image file
    or a folder of images (natural name order).

    ``live`` overrides the guess (cameras and URLs are live: only the newest frame is kept).
    ``read_timeout``: seconds without a frame before the source counts as ended (default 10 for
    live sources, 60 otherwise). Raises :class:`~padet_sdk.errors.SourceError` if it cannot be
    opened.
    """
    import cv2

    if isinstance(source, (int, np.integer)) or (isinstance(source, str) and source.strip().isdigit()):
        idx = int(source)
        cap = cv2.VideoCapture(idx)
        if not cap.isOpened():
            raise SourceError(
                f"cannot open camera {idx}: no such device, no permission, or in use by another program "
                "(on Linux list cameras with `ls /dev/video*` or `v4l2-ctl --list-devices`)"
            )
        return _capture_source(cap, f"camera {idx}", "camera", True if live is None else live, read_timeout, prefetch)
    text = str(source)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme and scheme != "file":
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000]
        cap = cv2.VideoCapture(text, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            raise SourceError(f"cannot open stream {text}: unreachable, wrong URL/credentials, or unsupported by this OpenCV's FFmpeg")
        is_live = scheme in LIVE_SCHEMES if live is None else live
        return _capture_source(cap, text, "url", is_live, read_timeout, prefetch)
    path = Path(text[7:] if scheme == "file" else text).expanduser()
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()), key=_natural_key)
        if not files:
            raise SourceError(f"folder {path} has no images ({', '.join(IMAGE_EXTENSIONS)})")
        return _image_files_source(files, str(path), "folder", bool(live), read_timeout, prefetch)
    if not path.exists():
        raise SourceError(f"video source not found: {path} (expected a camera index, a video file, an image folder or a URL)")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return _image_files_source([path], str(path), "image", bool(live), read_timeout, prefetch)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"cannot open video file {path}: not a video, or a codec this OpenCV's FFmpeg cannot decode")
    return _capture_source(cap, str(path), "file", bool(live), read_timeout, prefetch)


def _image_files_source(files: list[Path], name: str, kind: str, live: bool, read_timeout: float | None, prefetch: int) -> FrameSource:
    import cv2

    it = iter(files)

    def grab() -> np.ndarray | None:
        for p in it:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is not None:
                return img
            log.warning("skipping unreadable image %s", p)
        return None

    return FrameSource(grab, name=name, kind=kind, live=live, frame_count=len(files), prefetch=prefetch, read_timeout=read_timeout)


# ----------------------------------------------------------------------------- output
class _VideoOutput:
    """``cv2.VideoWriter`` (mp4v) fed by a thread, so drawing and encoding overlap detection
    (OpenCV releases the GIL). Frames of another size than the first are resized to it (a writer
    has one frame size)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        import cv2

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
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


# ----------------------------------------------------------------------------- pipeline
@dataclass
class FrameResult:
    """One processed frame, yielded by :func:`stream` in frame order."""

    index: int  # position in the source; gaps = dropped frames (live sources only)
    frame: np.ndarray  # the original BGR frame (not drawn on)
    detections: "Detections"
    latency_ms: float  # from the frame being read to its detections being ready
    fps: float  # results per second over the last ~30 frames
    dropped: int  # frames dropped so far (live sources)
    draw_min_score: float = 0.0  # annotated() draws only detections scoring at least this
    _annotated: np.ndarray | None = field(default=None, repr=False)

    def annotated(self, overlay: bool = True) -> np.ndarray:
        """A drawn copy of the frame: boxes and labels of the detections scoring at least
        ``draw_min_score``, and (``overlay``) an FPS/latency line. Cached, so writing and showing
        it costs one drawing."""
        if self._annotated is None:
            shown = self.detections.filter(self.draw_min_score) if self.draw_min_score > 0 else self.detections
            img = shown.draw(self.frame, copy=True)
            if overlay:
                count = f"{len(shown)} shown / {len(self.detections)} det" if shown is not self.detections else f"{len(shown)} det"
                draw_overlay(img, f"{self.fps:5.1f} FPS  latency {self.latency_ms:5.1f} ms  {count}")
            self._annotated = img
        return self._annotated


def draw_overlay(img: np.ndarray, text: str) -> np.ndarray:
    """White-on-black status line in the top-left corner (in place)."""
    import cv2

    scale = max(0.4, min(img.shape[1] / 900.0, 1.0))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(img, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), cv2.FILLED)
    cv2.putText(img, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img


@dataclass
class StreamStats:
    """Summary of a finished (or running) :func:`stream`."""

    frames: int = 0
    dropped: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    end_reason: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def latency(self, q: float) -> float:
        """Latency quantile (0..1) in ms."""
        return float(np.quantile(self.latencies_ms, q)) if self.latencies_ms else 0.0

    def summary(self) -> str:
        lat = self.latencies_ms
        mean = float(np.mean(lat)) if lat else 0.0
        return (
            f"{self.frames} frames in {self.seconds:.2f} s: {self.fps:.1f} FPS, latency mean {mean:.1f} ms "
            f"(p50 {self.latency(0.5):.1f}, p95 {self.latency(0.95):.1f}), dropped {self.dropped}"
            + (f", ended: {self.end_reason}" if self.end_reason else "")
        )


class VideoStream:
    """Iterator of :class:`FrameResult` (see :func:`stream`). Use it as a context manager, or
    call :meth:`close`, when leaving the loop early: that finishes the output file."""

    def __init__(
        self, detector: "Detector", source: FrameSource, depth: int, output: str | Path | None,
        output_fps: float | None, overlay: bool, max_frames: int | None, draw_min_score: float = 0.0,
    ) -> None:
        self.detector = detector
        self.source = source
        self.depth = max(1, int(depth))
        self.output_path = output
        self._output_fps = output_fps
        self._overlay = overlay
        self._draw_min_score = draw_min_score
        self._max_frames = max_frames
        self.stats = StreamStats()
        self._out: _VideoOutput | None = None
        self._gen = self._run()
        self._closed = False

    def __iter__(self) -> "VideoStream":
        return self

    def __next__(self) -> FrameResult:
        return next(self._gen)

    def _run(self) -> Iterator[FrameResult]:
        pending: deque[tuple[Frame, PendingDetections]] = deque()
        recent: deque[float] = deque(maxlen=30)
        t_start = time.perf_counter()
        submitted = 0
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.depth:
                    if self._max_frames is not None and submitted >= self._max_frames:
                        exhausted = True
                        break
                    frame = self.source.read()
                    if frame is None:
                        exhausted = True
                        break
                    pending.append((frame, self.detector.submit(frame.image)))
                    submitted += 1
                if not pending:
                    break
                frame, job = pending.popleft()
                dets = job.result(timeout=INFER_TIMEOUT)
                now = time.perf_counter()
                recent.append(now)
                fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
                st = self.stats
                st.frames += 1
                st.dropped = self.source.dropped
                st.seconds = now - t_start
                latency = (now - frame.t_capture) * 1e3
                st.latencies_ms.append(latency)
                res = FrameResult(frame.index, frame.image, dets, latency, fps, self.source.dropped, self._draw_min_score)
                if self.output_path is not None:
                    self._write(res)
                yield res
        finally:
            for _, job in pending:  # let in-flight requests finish so they return to the pool
                try:
                    job.result(timeout=30)
                except Exception:  # noqa: BLE001
                    pass
            self._finish(t_start)

    def _write(self, res: FrameResult) -> None:
        if self._out is None:
            h, w = res.frame.shape[:2]
            fps = self._output_fps or self.source.fps or 25.0
            self._out = _VideoOutput(self.output_path, fps, (w, h))  # type: ignore[arg-type]
        overlay = self._overlay
        self._out.write(lambda: res.annotated(overlay))  # drawn on the writer thread

    def _finish(self, t_start: float) -> None:
        if self._closed:
            return
        self._closed = True
        self.source.close()
        if self._out is not None:
            self._out.close()
            log.info("wrote %d frames to %s", self._out.frames, self._out.path)
        st = self.stats
        st.seconds = st.seconds or (time.perf_counter() - t_start)
        st.dropped = self.source.dropped
        st.end_reason = self.source.end_reason
        log.info("stream %s: %s", self.source.name, st.summary())

    def close(self) -> None:
        """Stop reading, wait for in-flight inferences, finish the output file."""
        self._gen.close()
        if not self._closed:  # never started
            self._finish(time.perf_counter())

    def __enter__(self) -> "VideoStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def stream(
    detector: "Detector",
    source: int | str | Path | FrameSource,
    *,
    depth: int | None = None,
    output: str | Path | None = None,
    output_fps: float | None = None,
    overlay: bool = True,
    draw_min_score: float = 0.0,
    max_frames: int | None = None,
    live: bool | None = None,
    read_timeout: float | None = None,
) -> VideoStream:
    """Detect on every frame of ``source``, yielding :class:`FrameResult` in frame order.

    For throughput, create the detector with :meth:`Detector.for_video
    <padet_sdk.detector.Detector.for_video>` (several narrower inferences side by side, so that
    decoding, drawing and encoding do not stall a multi-threaded one).

    Args:
        detector: a :class:`~padet_sdk.detector.Detector` (its ``num_requests`` bounds the
            inferences in flight).
        source: camera index, video file, URL, image/folder path, or an open :class:`FrameSource`.
        depth: frames in flight (default ``max(2, detector.num_requests)``); 1 = synchronous.
        output: optional annotated video file (``.mp4`` → mp4v, ``.avi`` → MJPG); every yielded
            frame is written, at ``output_fps`` (default: the source's, else 25; a live source
            that drops frames then plays back faster than real time — pass the achieved FPS).
        overlay: draw the FPS/latency line on the output frames.
        draw_min_score: draw only detections scoring at least this on annotated frames (the
            yielded detections are not filtered: scoring a stream needs all of them).
        max_frames: stop after this many frames.
        live, read_timeout: see :func:`open_source`.
    The returned :class:`VideoStream` has ``stats`` (FPS, latency quantiles, dropped frames),
    logged at INFO when the stream ends.
    """
    src = source if isinstance(source, FrameSource) else open_source(source, live=live, read_timeout=read_timeout)
    if getattr(detector, "for_video_setup", True) is False and available_cores() > 1:
        log.info("for video, Detector.for_video(...) is usually faster: several narrower inferences side by side "
                 "instead of one inference on all %d cores, which decoding and encoding keep interrupting",
                 available_cores())  # fmt: skip
    if depth is None:
        depth = max(2, getattr(detector, "num_requests", 2))
    return VideoStream(detector, src, depth, output, output_fps, overlay, max_frames, draw_min_score)


__all__ = ["available_cores", "Frame", "FrameSource", "FrameResult", "StreamStats", "VideoStream", "open_source", "stream", "draw_overlay"]
