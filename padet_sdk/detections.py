"""Detections of one frame: one packed structured array with named, copy-free views.

One array (instead of parallel lists) keeps a frame's results in a single allocation that can be
sliced, sorted or saved together, while ``boxes``/``scores``/``class_ids`` read like plain
arrays.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

#: Row layout of :attr:`Detections.data`. ``box`` is x1, y1, x2, y2 in the frame's pixels.
DETECTION_DTYPE = np.dtype([("box", np.float32, (4,)), ("score", np.float32), ("class_id", np.int32), ("anchor", np.int32)])


@dataclass(frozen=True)
class Timing:
    """Wall-clock milliseconds of each stage. For a batch call every frame of the batch gets the
    batch's values (the stages run once for the whole batch)."""

    preprocess_ms: float = 0.0
    infer_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.infer_ms + self.postprocess_ms

    def to_dict(self) -> dict[str, float]:
        return {
            "preprocess_ms": round(self.preprocess_ms, 3),
            "infer_ms": round(self.infer_ms, 3),
            "postprocess_ms": round(self.postprocess_ms, 3),
            "total_ms": round(self.total_ms, 3),
        }


class Detection(NamedTuple):
    """One detection, as yielded by iterating over :class:`Detections`."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    score: float
    class_id: int  # index into the model's class_names (0-based)
    class_name: str


def _color(class_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per class (golden-ratio hue walk)."""
    import cv2

    hue = int((class_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.array([[[hue, 220, 255]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


@dataclass(frozen=True, eq=False)
class Detections:
    """The detections of one frame, sorted by score (highest first).

    Attributes:
        data: structured array with fields ``box`` (x1, y1, x2, y2 float32, frame pixels),
            ``score`` (float32), ``class_id`` (int32, 0-based index into ``class_names``) and
            ``anchor`` (int32, index of the anchor that produced it — for debugging).
        class_names: all class names of the model (not per detection; see :attr:`labels`).
        image_size: (height, width) of the frame the boxes refer to.
        timing: per-stage milliseconds of the call that produced these detections.
    """

    data: np.ndarray
    class_names: tuple[str, ...]
    image_size: tuple[int, int]
    timing: Timing = field(default_factory=Timing)

    @classmethod
    def empty(cls, class_names: Sequence[str], image_size: tuple[int, int]) -> "Detections":
        return cls(np.zeros(0, DETECTION_DTYPE), tuple(class_names), image_size)

    # ---- named views (no copies) --------------------------------------------------------
    @property
    def boxes(self) -> np.ndarray:
        """(M, 4) float32 x1, y1, x2, y2 in the frame's pixels."""
        return self.data["box"]

    @property
    def scores(self) -> np.ndarray:
        """(M,) float32, descending."""
        return self.data["score"]

    @property
    def class_ids(self) -> np.ndarray:
        """(M,) int32, 0-based indices into :attr:`class_names`."""
        return self.data["class_id"]

    @property
    def anchor_ids(self) -> np.ndarray:
        """(M,) int32 anchor index of each detection (debugging, comparing with training)."""
        return self.data["anchor"]

    @property
    def labels(self) -> list[str]:
        """Class name of each detection."""
        return [self.class_names[i] for i in self.class_ids.tolist()]

    # ---- container protocol --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Detection:
        row = self.data[i]
        cid = int(row["class_id"])
        x1, y1, x2, y2 = (float(v) for v in row["box"])
        return Detection((x1, y1, x2, y2), float(row["score"]), cid, self.class_names[cid])

    def __iter__(self) -> Iterator[Detection]:
        for i in range(len(self.data)):
            yield self[i]

    def __repr__(self) -> str:
        h, w = self.image_size
        return f"Detections({len(self)} in {w}x{h}, {self.timing.total_ms:.1f} ms)"

    def filter(self, min_score: float = 0.0, class_ids: Sequence[int] | None = None) -> "Detections":
        """A new Detections keeping those with score >= ``min_score`` (and in ``class_ids``)."""
        keep = self.scores >= min_score
        if class_ids is not None:
            keep &= np.isin(self.class_ids, np.asarray(class_ids))
        return Detections(self.data[keep], self.class_names, self.image_size, self.timing)

    # ---- serialisation ---------------------------------------------------------------------
    def to_dict(self, decimals: int = 2) -> dict[str, Any]:
        """Plain-Python form (JSON-ready); box coordinates rounded to ``decimals``."""
        return {
            "image_size": {"height": int(self.image_size[0]), "width": int(self.image_size[1])},
            "detections": [
                {
                    "box": [round(v, decimals) for v in d.box],
                    "score": round(d.score, 5),
                    "class_id": d.class_id,
                    "class_name": d.class_name,
                }
                for d in self
            ],
            "timing": self.timing.to_dict(),
        }

    def to_json(self, **kwargs: Any) -> str:
        """``json.dumps(self.to_dict())``; keyword arguments go to :func:`json.dumps`."""
        return json.dumps(self.to_dict(), **kwargs)

    # ---- visualisation ---------------------------------------------------------------------
    def draw(
        self,
        frame: np.ndarray,
        copy: bool = True,
        min_score: float = 0.0,
        thickness: int = 2,
        font_scale: float = 0.5,
        show_score: bool = True,
    ) -> np.ndarray:
        """Draw boxes with "name score" labels on a BGR uint8 ``frame``.

        Returns the drawn image: a copy by default, or ``frame`` itself with ``copy=False``
        (cheaper in a video loop where the frame is not needed afterwards).
        """
        import cv2

        out = frame.copy() if copy else frame
        h, w = out.shape[:2]
        for det in self:
            if det.score < min_score:
                continue
            color = _color(det.class_id)
            x1, y1, x2, y2 = (int(round(v)) for v in det.box)
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
            text = f"{det.class_name} {det.score:.2f}" if show_score else det.class_name
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            ty = y1 - 3 if y1 - th - base - 3 >= 0 else min(y1 + th + base + 3, h - 1)
            tx = max(0, min(x1, w - tw - 1))
            cv2.rectangle(out, (tx, ty - th - base), (tx + tw + 2, ty + 1), color, cv2.FILLED)
            cv2.putText(out, text, (tx + 1, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
        return out
