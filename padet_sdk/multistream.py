"""Several sources on one detector: :class:`MultiStream` (what ``stream(det, [src0, src1, ...])``
returns) shares one :class:`~padet_sdk.detector.Detector`'s inference requests between cameras
and files, the way an edge box watches several cameras with one model.

Each source has a feeder thread that takes frames from its :class:`~padet_sdk.sources.FrameSource`
(live sources keep only the newest frame, files wait for room), and the calling thread picks
the next frame round-robin among the sources that have one ready, so a fast file cannot starve
a camera and every source gets its turn. Results come out in submission order, which is frame
order per source, tagged with ``source`` (name) and ``source_index``. A source that fails (cannot
be opened, or stays down after its reconnect attempts) ends alone: it is logged, its
:class:`SourceStats` say why, and the others go on.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from .errors import PadetError, SourceError
from .output import VideoOutput, refuse_overwriting_input
from .reconnect import ReconnectPolicy
from .sources import Frame, FrameSource, open_source
from .stages import Stage, build_stages, close_stages, run_stages
from .stream import INFER_TIMEOUT, FrameResult, PipelineStream, StreamStats

if TYPE_CHECKING:
    from .detector import Detector, PendingDetections

#: the keys of a per-source ``analytics`` dict: :func:`~padet_sdk.stream.stream`'s analytics arguments
ANALYTICS_KEYS = ("classes", "track", "zones", "sinks", "stages")

log = logging.getLogger("padet_sdk.stream")

#: frames a file source may have decoded and waiting for its turn
FILE_BACKLOG = 2


@dataclass
class SourceStats(StreamStats):
    """:class:`~padet_sdk.stream.StreamStats` of one source of a :class:`MultiStream`."""

    name: str = ""
    error: str | None = None  # why it failed (open failure, reconnect attempts used up)


@dataclass
class MultiStats:
    """Per-source statistics and the whole run's throughput."""

    sources: list[SourceStats] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.sources)

    @property
    def fps(self) -> float:
        """Aggregate results per second over all sources."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> list[SourceStats]:
        return [s for s in self.sources if s.error is not None]

    def summary(self) -> str:
        lines = [f"{len(self.sources)} sources, {self.frames} frames in {self.seconds:.2f} s: {self.fps:.1f} FPS in all"]
        lines += [f"  [{i}] {s.name}: {s.summary()}" + (f" FAILED: {s.error}" if s.error else "") for i, s in enumerate(self.sources)]
        return "\n".join(lines)


class _Lane:
    """One source of a multi-stream: its feeder thread, its ready frames, its output."""

    def __init__(self, index: int, source: FrameSource | None, name: str, output: str | Path | None, ready: threading.Condition,
                 max_frames: int | None, stages: list[Stage] | None = None) -> None:  # fmt: skip
        self.index = index
        self.stages = stages or []  # this source's tracker, zones, sinks: their state is per source
        self.source = source
        self.stats = SourceStats(name=name)
        self.output = output
        self.out: VideoOutput | None = None
        self.ready = ready  # shared by all lanes: "some lane has a frame, or ended"
        self.frames: deque[Frame] = deque()
        self.dropped = 0  # live frames replaced while waiting for their turn
        self.ended = source is None
        self.in_flight = 0
        self.max_frames = max_frames
        self.recent: deque[float] = deque(maxlen=30)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        if source is not None:
            self.thread = threading.Thread(target=self._feed, name=f"padet-feeder-{index}", daemon=True)
            self.thread.start()

    def _feed(self) -> None:
        src = self.source
        assert src is not None
        taken = 0
        try:
            while not self.stop.is_set() and (self.max_frames is None or taken < self.max_frames):
                frame = src.read()
                if frame is None:
                    break
                taken += 1
                with self.ready:
                    if src.live and self.frames:
                        stale = self.frames.popleft()  # the newest frame replaces it, and carries its events
                        self.dropped += 1
                        if stale.events:
                            frame = Frame(frame.index, frame.image, frame.t_capture, (*stale.events, *frame.events))
                    while not src.live and len(self.frames) >= FILE_BACKLOG and not self.stop.is_set():
                        self.ready.wait(0.1)
                    if self.stop.is_set():  # stopped while this frame was being read
                        break
                    self.frames.append(frame)
                    self.ready.notify_all()
        except Exception as e:  # noqa: BLE001 - a broken source ends alone
            self.stats.error = f"{type(e).__name__}: {e}"
        finally:
            if src.error is not None and self.stats.error is None:
                self.stats.error = str(src.error)
            with self.ready:
                self.ended = True
                self.ready.notify_all()

    def close(self) -> None:
        self.stop.set()
        if self.source is not None:
            self.source.close()
        if self.thread is not None and self.thread is not threading.current_thread():
            with self.ready:
                self.ready.notify_all()
            self.thread.join(timeout=3.0)
        st = self.stats
        if self.source is not None:
            st.dropped = self.source.dropped + self.dropped
            st.end_reason = self.source.end_reason
            st.events = list(self.source.events)
        if self.out is not None:
            out, self.out = self.out, None
            try:
                out.close()
                log.info("wrote %d frames to %s", out.frames, out.path)
            except SourceError as e:
                st.error = st.error or str(e)
                log.error("%s", e)
        stages, self.stages = self.stages, []
        try:
            close_stages(stages)  # sinks finish their files
        except Exception as e:  # noqa: BLE001 - one source's sink does not stop the others closing
            st.error = st.error or f"closing its analytics: {e}"
        if st.error:
            log.error("source [%d] %s failed: %s", self.index, st.name, st.error)


class _MultiPipeline:
    """The state of one :class:`MultiStream`; holds no reference to it (see stream._Pipeline)."""

    def __init__(self, detector: "Detector", lanes: list[_Lane], depth: int, output_fps: float | None, overlay: bool,
                 draw_min_score: float, ready: threading.Condition) -> None:  # fmt: skip
        self.detector = detector
        self.lanes = lanes
        self.depth = depth
        self.output_fps = output_fps
        self.overlay = overlay
        self.draw_min_score = draw_min_score
        self.ready = ready
        self.stats = MultiStats([lane.stats for lane in lanes])
        self.closed = False
        self.t_start = time.perf_counter()
        self.turn = 0  # round-robin position

    def _next_frame(self, block: bool) -> tuple[_Lane, Frame] | None:
        """The next ready frame, round-robin from the lane after the last one served; None when
        nothing is ready (and ``block`` is False) or every lane has ended."""
        n = len(self.lanes)
        with self.ready:
            while True:
                for k in range(n):
                    lane = self.lanes[(self.turn + k) % n]
                    if lane.frames:
                        self.turn = (lane.index + 1) % n
                        frame = lane.frames.popleft()
                        self.ready.notify_all()  # a file feeder may be waiting for room
                        return lane, frame
                if not block or all(lane.ended for lane in self.lanes):
                    return None
                self.ready.wait(0.1)

    def results(self) -> Iterator[FrameResult]:
        pending: deque[tuple[_Lane, Frame, PendingDetections]] = deque()
        self.t_start = time.perf_counter()
        try:
            while True:
                while len(pending) < self.depth:
                    got = self._next_frame(block=not pending)
                    if got is None:
                        break
                    lane, frame = got
                    pending.append((lane, frame, self.detector.submit(frame.image)))
                if not pending:
                    break
                lane, frame, job = pending.popleft()
                yield self._result(lane, frame, job.result(timeout=INFER_TIMEOUT))
        finally:
            self.interrupt()  # every source stops being read
            for _, _, job in pending:  # in-flight requests go back to the pool
                try:
                    job.result(timeout=30)
                except Exception:  # noqa: BLE001
                    pass
            self.finish()

    def _result(self, lane: _Lane, frame: Frame, dets: "object") -> FrameResult:
        now = time.perf_counter()
        lane.recent.append(now)
        r = lane.recent
        fps = (len(r) - 1) / (r[-1] - r[0]) if len(r) > 1 and r[-1] > r[0] else 0.0
        st = lane.stats
        st.frames += 1
        st.seconds = self.stats.seconds = now - self.t_start
        latency = (now - frame.t_capture) * 1e3
        st.latencies_ms.append(latency)
        dropped = (lane.source.dropped if lane.source else 0) + lane.dropped
        st.dropped = dropped
        res = FrameResult(frame.index, frame.image, dets, latency, fps, dropped, self.draw_min_score, frame.events)  # type: ignore[arg-type]
        res.source, res.source_index = st.name, lane.index
        if lane.stages and lane.source is not None:
            res = run_stages(res, lane.stages, lane.source, now - self.t_start)
        if lane.output is not None:
            if lane.out is None:
                h, w = frame.image.shape[:2]
                fps_out = self.output_fps or (lane.source.fps if lane.source else None) or 25.0
                lane.out = VideoOutput(lane.output, fps_out, (w, h))
            overlay = self.overlay
            lane.out.write(lambda: res.annotated(overlay))
        return res

    def interrupt(self) -> None:
        """Stop reading every source (the results generator may be busy in another thread);
        :meth:`finish` closes the lanes and their outputs."""
        with self.ready:
            for lane in self.lanes:
                lane.stop.set()  # the feeders stop queuing now, before the (joining) closes below
                lane.frames.clear()  # decoded ahead, not yet submitted: not wanted any more
            self.ready.notify_all()
        for lane in self.lanes:
            if lane.source is not None:
                lane.source.close()

    def finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        for lane in self.lanes:
            lane.close()
        self.stats.seconds = time.perf_counter() - self.t_start
        log.info("multi-stream: %s", self.stats.summary())


class MultiStream(PipelineStream):
    """Iterator of :class:`~padet_sdk.stream.FrameResult` from several sources (see
    :func:`multi_stream`); ``stats`` is a :class:`MultiStats`. Safe to abandon, like
    :class:`~padet_sdk.stream.VideoStream`: leaving early or dropping it stops every source,
    finishes in-flight inferences and closes the outputs."""

    def __init__(self, pipe: _MultiPipeline) -> None:
        super().__init__(pipe)
        self.detector, self.stats, self.depth = pipe.detector, pipe.stats, pipe.depth
        self.sources = [lane.source for lane in pipe.lanes]


def multi_stream(
    detector: "Detector",
    sources: Sequence[int | str | Path | FrameSource],
    *,
    depth: int | None = None,
    outputs: Sequence[str | Path | None] | None = None,
    output_fps: float | None = None,
    overlay: bool = True,
    draw_min_score: float = 0.0,
    max_frames: int | None = None,
    live: bool | None = None,
    read_timeout: float | None = None,
    reconnect: bool | ReconnectPolicy = True,
    classes: "list[str | int] | None" = None,
    track: bool = False,
    analytics: "Sequence[Mapping[str, Any] | None] | None" = None,
) -> MultiStream:
    """Detect on several sources with one detector, round-robin between them.

    Args:
        sources: camera indices, files, URLs, folders or open :class:`FrameSource`\\ s.
        depth: inferences in flight over all sources (default ``max(2, detector.num_requests)``).
        outputs: one annotated video path (or None) per source.
        max_frames: stop each source after this many frames.
        classes, track: for every source: keep only these classes; ``track=True`` gives each
            source its own default :class:`~padet_sdk.track.Tracker` (identities are per source).
        analytics: one dict (or None) per source of :func:`~padet_sdk.stream.stream`'s analytics
            arguments (``classes``, ``track``, ``zones``, ``sinks``, ``stages``), overriding the two
            above for that source. Trackers, zones and sinks hold state: one object serves one
            source (ValueError otherwise).
        Others: as for :func:`~padet_sdk.stream.stream`, applied to every source.

    A source that cannot be opened ends alone (its :class:`SourceStats` ``error`` says why);
    :class:`~padet_sdk.errors.SourceError` only if none can be opened, or an output is one of
    the inputs.
    """
    if not sources:
        raise SourceError("no sources given")
    outputs = list(outputs) if outputs is not None else [None] * len(sources)
    if len(outputs) != len(sources):
        raise ValueError(f"{len(outputs)} outputs for {len(sources)} sources: give one (or None) per source")
    for src, out in zip(sources, outputs):  # before anything is opened or written
        if out is not None:
            refuse_overwriting_input(src.name if isinstance(src, FrameSource) and src.kind in ("file", "image") else src, out)
    lane_stages = _lane_stages(detector, len(sources), classes, track, analytics)  # before any source opens
    ready = threading.Condition()
    lanes = []
    for i, (src, out) in enumerate(zip(sources, outputs)):
        name = src.name if isinstance(src, FrameSource) else str(src)
        try:
            opened = src if isinstance(src, FrameSource) else open_source(src, live=live, read_timeout=read_timeout, reconnect=reconnect)
        except (PadetError, OSError) as e:
            lane = _Lane(i, None, name, None, ready, max_frames, lane_stages[i])  # its sinks get closed
            lane.stats.error, lane.stats.end_reason = str(e), "open failed"
            log.error("source [%d] %s cannot be opened, going on without it: %s", i, name, e)
        else:
            lane = _Lane(i, opened, opened.name, out, ready, max_frames, lane_stages[i])
        lanes.append(lane)
    if all(lane.source is None for lane in lanes):
        for lane in lanes:
            lane.close()
        raise SourceError("no source could be opened: " + "; ".join(f"{lane.stats.name}: {lane.stats.error}" for lane in lanes))
    depth = max(2, detector.num_requests) if depth is None else max(1, int(depth))
    return MultiStream(_MultiPipeline(detector, lanes, depth, output_fps, overlay, draw_min_score, ready))


def _lane_stages(detector: "Detector", n: int, classes: "list[str | int] | None", track: bool,
                 analytics: "Sequence[Mapping[str, Any] | None] | None") -> list[list[Stage]]:
    """The stages of each source: ``classes``/``track`` for all, each ``analytics`` dict on top."""
    if analytics is not None and len(analytics) != n:
        raise ValueError(f"{len(analytics)} analytics entries for {n} sources: give one (or None) per source")
    if track not in (True, False):
        raise TypeError("multi_stream(track=) is True or False (a Tracker per source); pass your own trackers "
                        "per source as analytics=[{'track': Tracker(...)}, ...]")  # fmt: skip
    out, seen = [], {}
    for i in range(n):
        kw = dict((analytics[i] if analytics is not None else None) or {})
        unknown = set(kw) - set(ANALYTICS_KEYS)
        if unknown:
            raise ValueError(f"analytics[{i}] has unknown keys {sorted(unknown)}; allowed: {', '.join(ANALYTICS_KEYS)}")
        kw.setdefault("classes", classes)
        kw.setdefault("track", track)
        stateful = [kw["track"]] if not isinstance(kw["track"], bool) else []
        for obj in [*stateful, *kw.get("zones", ()), *kw.get("sinks", ()), *kw.get("stages", ())]:
            if id(obj) in seen and seen[id(obj)] != i:
                raise ValueError(f"{type(obj).__name__} object given to sources {seen[id(obj)]} and {i}: "
                                 "trackers, zones and sinks keep per-source state, give each source its own")  # fmt: skip
            seen[id(obj)] = i
        out.append(build_stages(detector, **kw))
    return out


__all__ = ["ANALYTICS_KEYS", "FILE_BACKLOG", "MultiStats", "MultiStream", "SourceStats", "multi_stream"]
