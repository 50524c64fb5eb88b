"""One processed frame of a stream: what :func:`padet_sdk.stream` and
:func:`padet_sdk.multi_stream` yield and what the analytics stages (:mod:`padet_sdk.stages`:
tracker, zones, sinks) take and give back.

Its own module so that those stages can name it without importing the pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .detections import track_color
from .output import draw_overlay
from .reconnect import SourceEvent

if TYPE_CHECKING:
    from .detections import Detections


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
    events: tuple[SourceEvent, ...] = ()  # the source's disconnects/reconnects just before this frame
    source: str = ""  # the source's name (multi_stream tags each result with it)
    source_index: int = 0  # its position in multi_stream's list of sources
    # filled by the analytics stages (padet_sdk.stages): tracker, zones, sinks
    time_s: float = 0.0  # video time (files), else seconds since the stream started
    zone_counts: dict[str, dict] = field(default_factory=dict)  # zone/line name -> its counts
    trails: dict[int, list[tuple[float, float]]] = field(default_factory=dict, repr=False)  # track id -> recent centres
    overlays: list = field(default_factory=list, repr=False)  # drawing functions img -> None (zones, lines)
    untracked: "Detections | None" = field(default=None, repr=False)  # all detections, before a tracker kept its own
    _annotated: np.ndarray | None = field(default=None, repr=False)

    def annotated(self, overlay: bool = True) -> np.ndarray:
        """A drawn copy of the frame: boxes and labels of the detections scoring at least
        ``draw_min_score``, and (``overlay``) an FPS/latency line. Cached, so writing and showing
        it costs one drawing."""
        if self._annotated is None:
            shown = self.detections.filter(self.draw_min_score) if self.draw_min_score > 0 else self.detections
            img = draw_analytics(shown.draw(self.frame, copy=True), self)
            if overlay:
                count = f"{len(shown)} shown / {len(self.detections)} det" if shown is not self.detections else f"{len(shown)} det"
                draw_overlay(img, f"{self.fps:5.1f} FPS  latency {self.latency_ms:5.1f} ms  {count}")
            self._annotated = img
        return self._annotated


def draw_analytics(img: np.ndarray, result: FrameResult) -> np.ndarray:
    """Trails of the tracks and the zones/lines of a result, on ``img`` (in place)."""
    import cv2

    for tid, pts in result.trails.items():
        if len(pts) > 1:
            poly = np.round(np.asarray(pts)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(img, [poly], False, track_color(tid), 2, cv2.LINE_AA)
    for draw in result.overlays:
        draw(img)
    return img


__all__ = ["FrameResult", "draw_analytics"]
