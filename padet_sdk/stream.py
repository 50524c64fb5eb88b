"""The video pipeline: :func:`stream` runs a detector over a frame source and yields one
:class:`FrameResult` per frame, in frame order.

It keeps several inferences in flight (the detector's ``num_requests``) while the calling
thread pre- and post-processes other frames, the source decodes ahead on its thread
(:mod:`padet_sdk.sources`) and the optional output encodes on another (:mod:`padet_sdk.output`),
so on a small CPU the stages overlap instead of adding up. :class:`StreamStats` sums it up.

Sources, outputs and ``available_cores`` are re-exported (``padet_sdk.stream.open_source``, ...)
so that code importing them from here keeps working.
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .frame_result import FrameResult
from .output import VideoOutput, draw_overlay, refuse_overwriting_input
from .reconnect import ReconnectPolicy, SourceEvent
from .sources import Frame, FrameSource, open_source
from .stages import Stage, build_stages, close_stages, run_stages
from .util import available_cores

if TYPE_CHECKING:
    from .detector import Detector, PendingDetections
    from .sinks import Sink
    from .track import Tracker
    from .zones import LineCounter, PolygonZone

log = logging.getLogger("padet_sdk.stream")

#: seconds one inference may take before the pipeline gives up on it (a wedged engine)
INFER_TIMEOUT = 120.0


@dataclass
class StreamStats:
    """Summary of a finished (or running) :func:`stream`."""

    frames: int = 0
    dropped: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    end_reason: str | None = None
    events: list[SourceEvent] = field(default_factory=list)  # disconnects, reconnects, giving up

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
            + (f", reconnected {sum(e.kind == 'reconnected' for e in self.events)}x" if self.events else "")
            + (f", ended: {self.end_reason}" if self.end_reason else "")
        )


class _Pipeline:
    """The state of one :class:`VideoStream`. It holds no reference to the stream object, so
    that dropping the stream (``break`` in a bare ``for``, an exception, the garbage collector)
    frees it at once and its finalizer can close the pipeline."""

    def __init__(
        self, detector: "Detector", source: FrameSource, depth: int, output: str | Path | None,
        output_fps: float | None, overlay: bool, max_frames: int | None, draw_min_score: float,
        stages: list[Stage] | None = None,
    ) -> None:
        self.detector = detector
        self.stages = stages or []
        self.source = source
        self.depth = max(1, int(depth))
        self.output_path = output
        self.output_fps = output_fps
        self.overlay = overlay
        self.draw_min_score = draw_min_score
        self.max_frames = max_frames
        self.stats = StreamStats()
        self.out: VideoOutput | None = None
        self.closed = False
        self.t_start = time.perf_counter()

    def results(self) -> Iterator[FrameResult]:
        pending: deque[tuple[Frame, PendingDetections]] = deque()
        recent: deque[float] = deque(maxlen=30)
        self.t_start = t_start = time.perf_counter()
        submitted = 0
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.depth:
                    if self.max_frames is not None and submitted >= self.max_frames:
                        exhausted = True
                        break
                    frame = self.source.read()
                    if frame is None:
                        exhausted = True
                        break
                    pending.append((frame, self.detector.submit(frame.image)))
                    submitted += 1
                if not pending:
                    if self.source.error is not None:  # a live source that could not be re-opened
                        raise self.source.error
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
                res = FrameResult(frame.index, frame.image, dets, latency, fps, self.source.dropped, self.draw_min_score,
                                  frame.events)  # fmt: skip
                res = run_stages(res, self.stages, self.source, now - t_start)  # tracker, zones, sinks
                if self.output_path is not None:
                    self._write(res)
                yield res
        finally:
            self.source.close()  # first: a live source stops being read at once
            for _, job in pending:  # let in-flight requests finish so they return to the pool
                try:
                    job.result(timeout=30)
                except Exception:  # noqa: BLE001
                    pass
            self.finish()

    def _write(self, res: FrameResult) -> None:
        if self.out is None:
            h, w = res.frame.shape[:2]
            fps = self.output_fps or self.source.fps or 25.0
            self.out = VideoOutput(self.output_path, fps, (w, h))  # type: ignore[arg-type]
        overlay = self.overlay
        self.out.write(lambda: res.annotated(overlay))  # drawn on the writer thread

    def interrupt(self) -> None:
        """Stop reading at once (the results generator is busy in another thread)."""
        self.source.close()

    def finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.source.close()
        if self.out is not None:
            self.out.close()
            log.info("wrote %d frames to %s", self.out.frames, self.out.path)
        st = self.stats
        st.seconds = st.seconds or (time.perf_counter() - self.t_start)
        st.dropped = self.source.dropped
        st.end_reason = self.source.end_reason
        st.events = list(self.source.events)
        log.info("stream %s: %s", self.source.name, st.summary())
        close_stages(self.stages)  # sinks finish their files


def _shutdown(gen: Iterator[FrameResult], pipe: "_Pipeline | Any") -> None:
    """Finalizer of a :class:`PipelineStream` (``close()``, garbage collection or interpreter
    exit): stop the sources, wait for in-flight inferences, flush and close the outputs, join
    threads."""
    try:
        gen.close()  # runs the generator's finally (a no-op if it never started)
    except ValueError:  # closed from another thread while that thread is inside next()
        pipe.interrupt()
    finally:
        pipe.finish()


class PipelineStream:
    """The iterator over a pipeline's results that :class:`VideoStream` and
    :class:`~padet_sdk.multistream.MultiStream` share: safe to abandon, since a finalizer (not
    ``__del__``, which would keep the pipeline alive in a cycle) shuts the pipeline down on
    ``close()``, ``with``, garbage collection or interpreter exit."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe
        self._gen = pipe.results()
        self._finalizer = weakref.finalize(self, _shutdown, self._gen, pipe)

    def __iter__(self) -> "PipelineStream":
        return self

    def __next__(self) -> FrameResult:
        return next(self._gen)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def stop(self) -> None:
        """End the iteration soon and cleanly, from any thread or a signal handler: the sources
        stop being read (on a helper thread, so that a handler never blocks on a join), the
        results already in flight are still yielded, then iteration ends as at the end of a
        file. What a graceful Ctrl-C needs: a KeyboardInterrupt raised inside the pipeline
        could land between taking a resource and handing it back."""
        threading.Thread(target=self._pipe.interrupt, name="padet-stop", daemon=True).start()

    def close(self) -> None:
        """Stop reading, wait for in-flight inferences, finish the outputs."""
        self._finalizer()

    def __enter__(self) -> "PipelineStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoStream(PipelineStream):
    """Iterator of :class:`FrameResult` (see :func:`stream`).

    Safe to abandon: leaving a bare ``for`` early (``break``, an exception) or dropping the
    stream finalises it at once (source stopped, in-flight inferences finished, output flushed
    and closed, threads joined); a stream still referenced is finalised at interpreter exit.
    ``with`` and :meth:`close` do the same explicitly, and report an output write failure."""

    def __init__(
        self, detector: "Detector", source: FrameSource, depth: int, output: str | Path | None,
        output_fps: float | None, overlay: bool, max_frames: int | None, draw_min_score: float = 0.0,
        stages: list[Stage] | None = None,
    ) -> None:
        pipe = _Pipeline(detector, source, depth, output, output_fps, overlay, max_frames, draw_min_score, stages)
        super().__init__(pipe)
        self.detector, self.source, self.depth, self.output_path, self.stats = detector, source, pipe.depth, output, pipe.stats


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
    reconnect: bool | ReconnectPolicy = True,
    classes: "list[str | int] | None" = None,
    track: "bool | Tracker" = False,
    zones: "list[PolygonZone | LineCounter]" = (),  # type: ignore[assignment]
    sinks: "list[Sink]" = (),  # type: ignore[assignment]
    stages: list[Stage] = (),  # type: ignore[assignment]
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
        output: optional annotated video file (``.mp4`` → H.264 with PyAV, else mp4v; ``.avi`` → MJPG); every yielded
            frame is written, at ``output_fps`` (default: the source's, else 25; a live source
            that drops frames then plays back faster than real time — pass the achieved FPS).
        overlay: draw the FPS/latency line on the output frames.
        draw_min_score: draw only detections scoring at least this on annotated frames (the
            yielded detections are not filtered: scoring a stream needs all of them).
        max_frames: stop after this many frames.
        live, read_timeout, reconnect: see :func:`open_source`; each disconnect/reconnect of a
            live source is in the next :attr:`FrameResult.events` and in ``stats.events``, and
            a source that cannot be re-opened ends the stream with
            :class:`~padet_sdk.errors.SourceError` after the results before it.
        classes, track, zones, sinks, stages: analytics applied to each result in this order
            (:mod:`padet_sdk.stages`): keep only these classes (names or ids); give detections
            track ids (``True`` = a default :class:`~padet_sdk.track.Tracker`, or your own);
            count in :class:`~padet_sdk.zones.PolygonZone` / :class:`~padet_sdk.zones.LineCounter`
            (``FrameResult.zone_counts``); your own ``f(result) -> result``; write
            :mod:`padet_sdk.sinks` files (closed when the stream ends). Annotated frames show
            track ids, trails, zones and lines.
    Raises :class:`~padet_sdk.errors.SourceError` if ``output`` is the source file itself
    (the same path, a symlink or a hard link), before anything is written.
    The returned :class:`VideoStream` has ``stats`` (FPS, latency quantiles, dropped frames),
    logged at INFO when the stream ends.
    """
    if isinstance(source, (list, tuple)):
        raise TypeError("stream() takes one source; for several on one detector use padet_sdk.multi_stream(detector, [src0, src1, ...])")
    if output is not None:  # before anything is opened or written
        on_disk = source.name if isinstance(source, FrameSource) and source.kind in ("file", "image") else source
        refuse_overwriting_input(on_disk, output)
    analytics = build_stages(detector, classes=classes, track=track, zones=zones, sinks=sinks, stages=stages)
    src = source if isinstance(source, FrameSource) else open_source(source, live=live, read_timeout=read_timeout, reconnect=reconnect)
    if not detector.for_video_setup and available_cores() > 1:
        log.info("for video, Detector.for_video(...) is usually faster: several narrower inferences side by side "
                 "instead of one inference on all %d cores, which decoding and encoding keep interrupting",
                 available_cores())  # fmt: skip
    if depth is None:
        depth = max(2, detector.num_requests)
    return VideoStream(detector, src, depth, output, output_fps, overlay, max_frames, draw_min_score, analytics)


__all__ = ["available_cores", "Frame", "FrameSource", "FrameResult", "PipelineStream", "StreamStats", "VideoStream", "open_source", "stream", "draw_overlay"]
