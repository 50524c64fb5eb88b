"""Counting in regions: objects inside a polygon per frame, and tracks crossing a line.

Both are plain objects that take :class:`~padet_sdk.detections.Detections` (``trigger``), and
stream stages (``zone(result)``) that put their counts into ``FrameResult.zone_counts`` under
their ``name`` and draw themselves on the annotated frame. An object is placed by one anchor
point of its box, by default the bottom centre (where it touches the ground in a street scene).
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .detections import Detections

if TYPE_CHECKING:
    from .frame_result import FrameResult

#: anchor name → (fraction of the width from x1, fraction of the height from y1)
ANCHORS: dict[str, tuple[float, float]] = {
    "bottom_center": (0.5, 1.0), "center": (0.5, 0.5), "top_center": (0.5, 0.0),
    "bottom_left": (0.0, 1.0), "bottom_right": (1.0, 1.0), "top_left": (0.0, 0.0), "top_right": (1.0, 0.0),
    "center_left": (0.0, 0.5), "center_right": (1.0, 0.5),
}  # fmt: skip

_names = itertools.count(1)


def anchor_points(detections: Detections, anchor: str = "bottom_center") -> np.ndarray:
    """(M, 2) float64 x, y of each box's ``anchor`` (a key of :data:`ANCHORS`), in pixels."""
    fx, fy = _anchor(anchor)
    b = detections.boxes.astype(np.float64)
    return np.stack([b[:, 0] + fx * (b[:, 2] - b[:, 0]), b[:, 1] + fy * (b[:, 3] - b[:, 1])], axis=1)


def _anchor(anchor: str) -> tuple[float, float]:
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}")
    return ANCHORS[anchor]


def _per_class(names: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return out


class PolygonZone:
    """Objects whose anchor lies inside (or on the border of) a polygon, counted per frame.

    Args:
        polygon: (K >= 3, 2) x, y vertices in pixels.
        name: the key of its counts in ``FrameResult.zone_counts`` (default ``zone1``, ...).
        anchor: which point of a box decides (:data:`ANCHORS`).

    After :meth:`trigger`, ``count`` is the number inside and ``class_counts`` the same per class name.
    """

    def __init__(self, polygon: Sequence[Sequence[float]] | np.ndarray, *, name: str | None = None,
                 anchor: str = "bottom_center", color: tuple[int, int, int] = (0, 200, 255)) -> None:  # fmt: skip
        self.polygon = np.asarray(polygon, np.float32).reshape(-1, 2)
        if len(self.polygon) < 3 or not np.isfinite(self.polygon).all():
            raise ValueError(f"a zone needs at least 3 finite x, y vertices, got {np.asarray(polygon).tolist()}")
        _anchor(anchor)
        self.name = name or f"zone{next(_names)}"
        self.anchor, self.color = anchor, color
        self.count = 0
        self.class_counts: dict[str, int] = {}

    def trigger(self, detections: Detections) -> np.ndarray:
        """(M,) bool: which detections are inside; updates ``count`` and ``class_counts``."""
        import cv2

        pts = anchor_points(detections, self.anchor)
        contour = self.polygon.reshape(-1, 1, 2)
        inside = np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in pts.tolist()], bool)
        self.count = int(inside.sum())
        self.class_counts = _per_class([detections.class_names[c] for c in detections.class_ids[inside].tolist()])
        return inside.reshape(len(detections))

    def counts(self) -> dict[str, Any]:
        """``{"inside": n, "per_class": {name: n}}`` of the latest frame."""
        return {"inside": self.count, "per_class": dict(self.class_counts)}

    def __call__(self, result: "FrameResult") -> "FrameResult":
        """Stream stage: count this frame, record the counts, draw the zone on annotated frames."""
        self.trigger(result.detections)
        result.zone_counts[self.name] = self.counts()
        result.overlays.append(_Drawn(self, self.counts()))
        return result

    def draw(self, img: np.ndarray, counts: dict[str, Any] | None = None) -> np.ndarray:
        """Outline the zone and write "name: n" at its first vertex (in place)."""
        import cv2

        counts = self.counts() if counts is None else counts
        pts = np.round(self.polygon).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], True, self.color, 2, cv2.LINE_AA)
        _label(img, f"{self.name}: {counts['inside']}", tuple(pts[0, 0]), self.color)
        return img


class LineCounter:
    """Tracks whose anchor crosses the segment ``start``-``end``, counted once per track and direction.

    "in" is a crossing from the left of ``start`` → ``end`` to its right as the image shows it
    (y down): for a line drawn left to right, moving downwards; "out" is the other way. A track
    is placed by its anchor in the frames it was detected in, so one that vanishes on one side
    and reappears on the other has crossed too. Needs tracked detections (``track_id``).

    Attributes ``in_count``/``out_count`` and ``class_in``/``class_out`` (per class name) grow
    over the stream.
    """

    def __init__(self, start: Sequence[float], end: Sequence[float], *, name: str | None = None,
                 anchor: str = "bottom_center", color: tuple[int, int, int] = (255, 0, 255),
                 forget_after: int = 300) -> None:  # fmt: skip
        self.start = np.asarray(start, np.float64).reshape(2)
        self.end = np.asarray(end, np.float64).reshape(2)
        if not (np.isfinite(self.start).all() and np.isfinite(self.end).all()) or np.array_equal(self.start, self.end):
            raise ValueError(f"a line needs two different finite points, got {list(start)} and {list(end)}")
        _anchor(anchor)
        self.name = name or f"line{next(_names)}"
        self.anchor, self.color, self.forget_after = anchor, color, int(forget_after)
        self.in_count = self.out_count = 0
        self.class_in: dict[str, int] = {}
        self.class_out: dict[str, int] = {}
        self._last: dict[int, tuple[float, float, float, int]] = {}  # track → x, y, side, frame
        self._counted: set[tuple[int, str]] = set()
        self._frame = 0

    def _side(self, pts: np.ndarray) -> np.ndarray:
        d = self.end - self.start
        return d[0] * (pts[:, 1] - self.start[1]) - d[1] * (pts[:, 0] - self.start[0])

    def trigger(self, detections: Detections) -> tuple[np.ndarray, np.ndarray]:
        """(crossed in, crossed out): (M,) bool masks of the tracks counted in this frame."""
        ids = detections.track_ids
        if ids is None:
            raise ValueError("LineCounter needs tracked detections (track ids): run a Tracker first, "
                             "e.g. stream(..., track=True)")  # fmt: skip
        self._frame += 1
        pts = anchor_points(detections, self.anchor)
        sides = self._side(pts)
        crossed_in, crossed_out = np.zeros(len(ids), bool), np.zeros(len(ids), bool)
        names = detections.labels
        for k, (tid, (x, y), side) in enumerate(zip(ids.tolist(), pts.tolist(), sides.tolist())):
            if side == 0:
                continue  # on the line: the side it ends up on decides
            prev = self._last.get(tid)
            self._last[tid] = (x, y, side, self._frame)
            if prev is None or (prev[2] > 0) == (side > 0) or not self._spans(prev[:2], (x, y)):
                continue
            way = "in" if side > 0 else "out"
            if (tid, way) in self._counted:
                continue
            self._counted.add((tid, way))
            if way == "in":
                self.in_count += 1
                self.class_in[names[k]] = self.class_in.get(names[k], 0) + 1
                crossed_in[k] = True
            else:
                self.out_count += 1
                self.class_out[names[k]] = self.class_out.get(names[k], 0) + 1
                crossed_out[k] = True
        if self._frame % 100 == 0:  # tracks unseen for long are not coming back
            self._last = {t: v for t, v in self._last.items() if self._frame - v[3] <= self.forget_after}
        return crossed_in, crossed_out

    def _spans(self, p: Sequence[float], q: Sequence[float]) -> bool:
        """Whether the move p → q passes between the segment's ends (its sides are known to differ)."""
        a, b = self.start, self.end
        pq = np.subtract(q, p)
        sa = pq[0] * (a[1] - p[1]) - pq[1] * (a[0] - p[0])
        sb = pq[0] * (b[1] - p[1]) - pq[1] * (b[0] - p[0])
        return sa * sb <= 0

    def counts(self) -> dict[str, Any]:
        """``{"in": n, "out": n, "per_class": {name: {"in": n, "out": n}}}`` so far."""
        per = {n: {"in": self.class_in.get(n, 0), "out": self.class_out.get(n, 0)} for n in sorted({*self.class_in, *self.class_out})}
        return {"in": self.in_count, "out": self.out_count, "per_class": per}

    def __call__(self, result: "FrameResult") -> "FrameResult":
        """Stream stage: count crossings of this frame, record the totals, draw the line."""
        self.trigger(result.detections)
        result.zone_counts[self.name] = self.counts()
        result.overlays.append(_Drawn(self, self.counts()))
        return result

    def draw(self, img: np.ndarray, counts: dict[str, Any] | None = None) -> np.ndarray:
        """The line, an arrow pointing "in", and "name: in n / out n" (in place)."""
        import cv2

        counts = self.counts() if counts is None else counts
        a, b = (tuple(int(round(v)) for v in p) for p in (self.start, self.end))
        cv2.line(img, a, b, self.color, 2, cv2.LINE_AA)
        mid = (self.start + self.end) / 2
        d = self.end - self.start
        normal = np.array([-d[1], d[0]]) / np.hypot(*d) * 20  # towards the "in" side
        tip = tuple(int(round(v)) for v in mid + normal)
        cv2.arrowedLine(img, tuple(int(round(v)) for v in mid), tip, self.color, 2, cv2.LINE_AA, tipLength=0.4)
        _label(img, f"{self.name}: in {counts['in']} / out {counts['out']}", a, self.color)
        return img


class _Drawn:
    """A zone's drawing with the counts of one frame (annotated frames may be drawn later, on the writer thread)."""

    def __init__(self, zone: PolygonZone | LineCounter, counts: dict[str, Any]) -> None:
        self.zone, self.counts = zone, counts

    def __call__(self, img: np.ndarray) -> None:
        self.zone.draw(img, self.counts)


def _label(img: np.ndarray, text: str, at: tuple[int, int], color: tuple[int, int, int]) -> None:
    import cv2

    h, w = img.shape[:2]
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    x = max(0, min(int(at[0]), w - tw - 4))
    y = max(th + base + 2, min(int(at[1]), h - 2))
    cv2.rectangle(img, (x, y - th - base - 2), (x + tw + 4, y), color, cv2.FILLED)
    cv2.putText(img, text, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)


__all__ = ["ANCHORS", "LineCounter", "PolygonZone", "anchor_points"]
