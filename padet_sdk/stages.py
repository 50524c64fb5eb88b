"""Video analytics as stages on a stream: each takes a :class:`~padet_sdk.stream.FrameResult`
and gives it back (changed, or with something added), in the order :func:`build_stages` sets:
class filter → tracker (:mod:`padet_sdk.track`) → zones and lines (:mod:`padet_sdk.zones`) →
your own stages → sinks (:mod:`padet_sdk.sinks`).

The pipeline (:func:`padet_sdk.stream`) only calls them; none needs a detector, so each can be
tested on recorded detections, and any callable ``f(result) -> result`` is a stage (one with a
``close()`` is closed when the stream ends).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .detections import resolve_classes
from .track import Tracker
from .zones import LineCounter, PolygonZone

if TYPE_CHECKING:
    from .detector import Detector
    from .sinks import Sink
    from .sources import FrameSource
    from .frame_result import FrameResult

Stage = Callable[["FrameResult"], "FrameResult"]


class ClassFilter:
    """Stage keeping only the detections of some classes (names or ids)."""

    def __init__(self, classes: Sequence[str | int], class_names: Sequence[str]) -> None:
        self.class_ids = np.asarray(resolve_classes(classes, class_names), np.int64)

    def __call__(self, result: "FrameResult") -> "FrameResult":
        d = result.detections
        return dataclasses.replace(result, detections=d[np.isin(d.class_ids, self.class_ids)], _annotated=None)


def build_stages(
    detector: "Detector", *, classes: Sequence[str | int] | None = None, track: bool | Tracker = False,
    zones: Iterable[PolygonZone | LineCounter] = (), sinks: Iterable["Sink"] = (), stages: Iterable[Stage] = (),
) -> list[Stage]:
    """The stages of ``stream(..., classes=, track=, zones=, sinks=, stages=)``, in order.
    ``track=True`` makes a default :class:`~padet_sdk.track.Tracker`; a LineCounter needs one."""
    zones, sinks, stages = list(zones), list(sinks), list(stages)
    out: list[Stage] = []
    if classes is not None:
        out.append(ClassFilter(classes, detector.class_names))
    tracker = Tracker() if track is True else (track or None)
    if tracker is not None and not isinstance(tracker, Tracker):
        raise TypeError(f"track must be True, False or a Tracker, got {type(track).__name__}")
    if tracker is None and any(isinstance(z, LineCounter) for z in zones):
        raise ValueError("a LineCounter counts tracks: pass track=True (or a Tracker) as well")
    for z in zones:
        if not isinstance(z, (PolygonZone, LineCounter)):
            raise TypeError(f"zones takes PolygonZone and LineCounter objects, got {type(z).__name__}")
    names = [z.name for z in zones]
    if len(set(names)) != len(names):
        raise ValueError(f"zone names must differ (they key FrameResult.zone_counts), got {names}")
    return [*out, *([tracker] if tracker else []), *zones, *stages, *sinks]


def frame_time(source: "FrameSource", index: int, since_start: float) -> float:
    """Seconds of a frame: video time (index / FPS) for a file with a known FPS, else wall time
    since the stream started."""
    fps = source.fps if source.kind == "file" else None
    return index / fps if fps else since_start


def run_stages(result: "FrameResult", stages: Sequence[Stage], source: "FrameSource", since_start: float) -> "FrameResult":
    """Apply ``stages`` to one result (its ``time_s`` set first)."""
    result.time_s = frame_time(source, result.index, since_start)
    for stage in stages:
        result = stage(result)
    return result


def close_stages(stages: Sequence[Stage]) -> None:
    """Close every stage that can be closed; the first error is raised after all were tried."""
    first: BaseException | None = None
    for stage in stages:
        close = getattr(stage, "close", None)
        if callable(close):
            try:
                close()
            except Exception as e:  # noqa: BLE001 - re-raised below
                first = first or e
    if first is not None:
        raise first


__all__ = ["ClassFilter", "Stage", "build_stages", "close_stages", "frame_time", "run_stages"]
