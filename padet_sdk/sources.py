"""Where frames come from: cameras, video files, rtsp/http streams, image files and folders.

:func:`open_source` turns what a user passes (``0``, ``"clip.mp4"``, ``"rtsp://..."``,
``"frames/"``) into a :class:`FrameSource`, which decodes ahead on a reader thread so that
decoding overlaps detection. Anything that yields BGR frames can be wrapped in a
:class:`FrameSource` too; the pipeline (:mod:`padet_sdk.stream`) sees only that.

Live sources (camera, rtsp/http URLs) keep only the newest frame: when the detector is slower
than the camera, stale frames are dropped instead of queuing up latency. Files and image
folders are never dropped from. Reads time out, so a stuck decoder ends the source with a
warning instead of hanging. A live source that stops delivering re-opens with bounded
exponential back-off (:mod:`padet_sdk.reconnect`), reports each disconnect and reconnect as a
:class:`~padet_sdk.reconnect.SourceEvent` (on the next :class:`Frame` and in ``events``), and
ends with :class:`~padet_sdk.errors.SourceError` once the attempts are used up.
"""
from __future__ import annotations

import logging
import queue
import re
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import capture
from .errors import SourceError
from .reconnect import ReconnectPolicy, SourceEvent, as_policy, retry

log = logging.getLogger("padet_sdk.stream")  # the pipeline's logger: a source ending is a stream event

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
#: seconds without a new frame after which a live source counts as disconnected
LIVE_READ_TIMEOUT = 10.0
#: the same for files/folders (a decoder stuck this long is broken, not slow)
FILE_READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source (0-based); gaps on live sources = dropped frames
    image: np.ndarray
    t_capture: float  # time.perf_counter() when it was read
    events: tuple[SourceEvent, ...] = ()  # disconnects/reconnects since the previous frame


class FrameSource:
    """Frames from a camera, file, URL or folder, decoded ahead by a reader thread.

    ``read()`` returns the next :class:`Frame` or None at the end (end of file, disconnect,
    timeout). ``live`` sources keep only the newest frame (``dropped`` counts the others).

    ``reopen`` (live sources only) returns a fresh ``(grab, release)`` pair, or None if the
    source cannot be opened now; with a ``reconnect`` policy the reader calls it when ``grab``
    fails, and ``events`` records what happened. If every attempt fails, ``error`` holds the
    :class:`~padet_sdk.errors.SourceError` and ``end_reason`` is "reconnect failed".
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
        reopen: Callable[[], tuple[Callable[[], np.ndarray | None], Callable[[], None] | None] | None] | None = None,
        reconnect: ReconnectPolicy | None = None,
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
        self.reconnect = reconnect if (live and reopen is not None) else None  # files never reconnect
        self.events: list[SourceEvent] = []
        self.error: SourceError | None = None
        self._reopen = reopen
        self._undelivered: list[SourceEvent] = []  # events not yet attached to a frame read after them
        self._reconnecting = threading.Event()
        self._grab = grab
        self._release = release
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._cond = threading.Condition()
        self._latest: Frame | None = None  # live mode
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=max(1, prefetch))  # file mode
        self._thread = threading.Thread(target=self._reader, name=f"padet-reader-{kind}", daemon=True)
        self._thread.start()
        # a source still open at interpreter exit is stopped first (its capture released by the
        # reader, not torn down under it by the exit)
        weakref.finalize(self, _stop_reader, self._stop, self._thread)

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
                    if self._reconnect(index):
                        continue
                    break
                frame = Frame(index, img, time.perf_counter())
                index += 1
                if self.live:
                    with self._cond:
                        carried = ()
                        if self._latest is not None:
                            self.dropped += 1  # never consumed: stale
                            carried = self._latest.events  # its events go on with the newer frame
                        if carried or self._undelivered:
                            frame = Frame(frame.index, frame.image, frame.t_capture, (*carried, *self._undelivered))
                            self._undelivered = []
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
                # ahead), or the consumer notices the end only when its 0.5 s poll runs out
                self._put(None)
            if self._release is not None:
                try:
                    self._release()
                except Exception:  # noqa: BLE001
                    pass

    def _event(self, kind: str, **kw: Any) -> SourceEvent:
        ev = SourceEvent(kind, self.name, time.time(), **kw)  # type: ignore[arg-type]
        with self._cond:
            self.events.append(ev)
            self._undelivered.append(ev)
        return ev

    def _reconnect(self, frames_so_far: int) -> bool:
        """Re-open after ``grab`` failed (reader thread); False when not reconnecting, stopped
        or out of attempts (then ``error`` is set)."""
        policy = self.reconnect
        if policy is None or self._reopen is None or self._stop.is_set():
            return False
        self._reconnecting.set()
        try:
            t_lost = time.perf_counter()
            self._event("disconnected", message=f"after {frames_so_far} frames")
            log.warning("%s %s disconnected after %d frames; re-opening (up to %s attempts)", self.kind, self.name,
                        frames_so_far, policy.attempts or "unlimited")  # fmt: skip
            if self._release is not None:
                release, self._release = self._release, None
                try:
                    release()
                except Exception:  # noqa: BLE001
                    pass
            opened, attempt, why = retry(self._reopen, policy, name=self.name, stop=self._stop)
            gap = time.perf_counter() - t_lost
            if opened is not None:
                self._grab, self._release = opened
                self._event("reconnected", attempt=attempt, gap_s=gap)
                log.warning("%s %s reconnected after %.1f s (attempt %d); frames of the gap are lost", self.kind,
                            self.name, gap, attempt)  # fmt: skip
                return True
            if self._stop.is_set():
                return False
            msg = f"{self.kind} {self.name} lost: {attempt} reconnect attempts over {gap:.1f} s failed (last: {why})"
            self.error = SourceError(msg)
            self._event("failed", attempt=attempt, gap_s=gap, message=why)
            log.error("%s", msg)
            return False
        finally:
            self._reconnecting.clear()

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
        if self.reconnect is not None:
            timeout += 5.0  # the reader's own read times out first and re-opens; this catches a wedged one
        if self.end_reason is not None:
            return None
        if self.live:
            deadline = time.monotonic() + timeout
            while True:
                with self._cond:
                    ok = self._cond.wait_for(lambda: self._latest is not None or self._ended.is_set(),
                                             max(0.0, min(0.5, deadline - time.monotonic())))  # fmt: skip
                    if self._latest is not None:
                        frame, self._latest = self._latest, None
                        return frame
                if ok:
                    break
                if self._reconnecting.is_set():  # the reader is re-opening: its back-off is bounded
                    deadline = time.monotonic() + timeout
                elif time.monotonic() >= deadline:
                    self._end("timeout")
                    return None
            if self.error is not None:
                self._end("reconnect failed")
            else:
                self._end("disconnected" if self.kind != "image" else "end")
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
        if reason == "reconnect failed":
            pass  # logged by the reader, with the attempts
        elif reason == "timeout":
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


def _stop_reader(stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    if thread is not threading.current_thread():
        thread.join(timeout=2.0)


def _natural_key(p: Path) -> list[Any]:
    """frame2.png before frame10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def capture_source(cap: Any, name: str, kind: str, live: bool, read_timeout: float | None, prefetch: int,
                   reopen: Callable[[], Any] | None = None, policy: ReconnectPolicy | None = None) -> FrameSource:  # fmt: skip
    """A :class:`FrameSource` over an open ``cv2.VideoCapture``; ``reopen`` opens a new one (or
    returns None) and, for a live source with a ``policy``, is how it reconnects."""
    fps, count = capture.capture_info(cap, live)
    return FrameSource(
        capture.grabber(cap), name=name, kind=kind, live=live, fps=fps, frame_count=count, release=cap.release,
        prefetch=prefetch, read_timeout=read_timeout, reopen=capture.reopener(reopen) if reopen else None,
        reconnect=policy if live else None,
    )


def open_source(
    source: int | str | Path, *, live: bool | None = None, read_timeout: float | None = None, prefetch: int = 4,
    reconnect: bool | ReconnectPolicy = True,
) -> FrameSource:
    """Open a camera index (``0`` or ``"0"``), a video file, an rtsp/http(s) URL, an image file
    or a folder of images (natural name order).

    ``live`` overrides the guess (cameras and URLs are live: only the newest frame is kept).
    ``read_timeout``: seconds without a frame before the source counts as disconnected (default
    10 for live sources, 60 otherwise). ``reconnect``: live sources re-open after a disconnect
    (True: the default :class:`~padet_sdk.reconnect.ReconnectPolicy`, or a policy; False:
    they end); a URL that cannot be opened at first is retried by the same policy. Raises
    :class:`~padet_sdk.errors.SourceError` if it cannot be opened.
    """
    import cv2

    policy = as_policy(reconnect)
    if isinstance(source, (int, np.integer)) or (isinstance(source, str) and source.strip().isdigit()):
        idx = int(source)
        cap, reopen = capture.open_camera(idx)
        return capture_source(cap, f"camera {idx}", "camera", True if live is None else live, read_timeout, prefetch, reopen, policy)
    text = str(source)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme and scheme != "file":
        is_live = scheme in LIVE_SCHEMES if live is None else live
        timeout = read_timeout if read_timeout is not None else (LIVE_READ_TIMEOUT if is_live else FILE_READ_TIMEOUT)
        cap, reopen = capture.open_url(text, read_timeout=timeout, policy=policy if is_live else None)
        return capture_source(cap, text, "url", is_live, read_timeout, prefetch, reopen, policy)
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
    return capture_source(cap, str(path), "file", bool(live), read_timeout, prefetch)


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


__all__ = [
    "FILE_READ_TIMEOUT", "Frame", "FrameSource", "IMAGE_EXTENSIONS", "LIVE_READ_TIMEOUT", "LIVE_SCHEMES", "ReconnectPolicy",
    "SourceEvent", "open_source",
]
