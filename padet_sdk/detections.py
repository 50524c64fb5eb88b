"""Detections of one frame: one packed structured array with named, copy-free views.

One array (instead of parallel lists) keeps a frame's results in a single allocation that can be
sliced, sorted or saved together, while ``boxes``/``scores``/``class_ids`` read like plain
arrays.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple, Sequence, overload

import numpy as np

if TYPE_CHECKING:
    import supervision

#: Row layout of :attr:`Detections.data`. ``box`` is x1, y1, x2, y2 in the frame's pixels.
DETECTION_DTYPE = np.dtype([("box", np.float32, (4,)), ("score", np.float32), ("class_id", np.int32), ("anchor", np.int32)])
#: The layout once a tracker has given each detection an identity (:meth:`Detections.with_track_ids`).
TRACKED_DTYPE = np.dtype([*DETECTION_DTYPE.descr, ("track_id", np.int32)])

#: What indexes a Detections into another Detections (an int gives one :class:`Detection`).
Index = slice | Sequence[int] | Sequence[bool] | np.ndarray


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
    track_id: int | None = None  # identity given by a tracker (padet_sdk.track), None if untracked


def _color(class_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per class (golden-ratio hue walk)."""
    import cv2

    hue = int((class_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.array([[[hue, 220, 255]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def track_color(track_id: int) -> tuple[int, int, int]:
    """The BGR colour of an identity (boxes and trails of one track share it)."""
    return _color(track_id * 7 + 3)


@dataclass(frozen=True, eq=False)
class Detections:
    """The detections of one frame, sorted by score (highest first).

    Attributes:
        data: structured array with fields ``box`` (x1, y1, x2, y2 float32, frame pixels),
            ``score`` (float32), ``class_id`` (int32, 0-based index into ``class_names``) and
            ``anchor`` (int32, index of the anchor that produced it — for debugging), and once
            tracked (:data:`TRACKED_DTYPE`) ``track_id`` (int32, >= 1).
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
    def track_ids(self) -> np.ndarray | None:
        """(M,) int32 identities given by a tracker (:mod:`padet_sdk.track`), None if untracked."""
        return self.data["track_id"] if "track_id" in self.data.dtype.names else None

    @property
    def labels(self) -> list[str]:
        """Class name of each detection."""
        return [self.class_names[i] for i in self.class_ids.tolist()]

    @property
    def xywh(self) -> np.ndarray:
        """(M, 4) float32 centre x, centre y, width, height in pixels (Ultralytics' ``xywh``;
        a COCO ``bbox`` is top-left x, y, w, h instead). A new array."""
        b = self.boxes
        return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)

    @property
    def xyxyn(self) -> np.ndarray:
        """(M, 4) float32 x1, y1, x2, y2 divided by the frame's width and height (0..1). A new array."""
        h, w = self.image_size
        return self.boxes / np.array([w, h, w, h], np.float32)

    # ---- container protocol --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.data)

    @overload
    def __getitem__(self, i: int) -> Detection: ...
    @overload
    def __getitem__(self, i: Index) -> "Detections": ...

    def __getitem__(self, i: "int | Index") -> "Detection | Detections":
        """``dets[0]`` is one :class:`Detection`; a slice, an integer array/list or a boolean mask
        of length M (``dets[dets.scores > 0.5]``, ``dets[:10]``) gives a new Detections (same
        class names, frame size and timing; rows copied unless a slice)."""
        if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            row = self.data[i]
            cid = int(row["class_id"])
            x1, y1, x2, y2 = (float(v) for v in row["box"])
            tid = int(row["track_id"]) if "track_id" in self.data.dtype.names else None
            return Detection((x1, y1, x2, y2), float(row["score"]), cid, self.class_names[cid], tid)
        if not isinstance(i, slice):
            i = np.asarray(i)
            if i.dtype == bool and i.shape != (len(self),):
                raise IndexError(f"a boolean mask over {len(self)} detections must have shape ({len(self)},), got {i.shape}")
            if i.dtype != bool and not (np.issubdtype(i.dtype, np.integer) or i.size == 0):
                raise IndexError(f"Detections take an int, a slice, integers or a boolean mask, not {i.dtype} values")
            i = i.astype(np.intp) if i.size == 0 else i
        return Detections(self.data[i], self.class_names, self.image_size, self.timing)

    def __iter__(self) -> Iterator[Detection]:
        for i in range(len(self.data)):
            yield self[i]

    def __repr__(self) -> str:
        h, w = self.image_size
        return f"Detections({len(self)} in {w}x{h}, {self.timing.total_ms:.1f} ms)"

    def filter(
        self, min_score: float = 0.0, class_ids: Sequence[int] | None = None, *, classes: Sequence[str | int] | None = None,
    ) -> "Detections":
        """A new Detections keeping those with score >= ``min_score`` and (if given) a class in
        ``class_ids`` and in ``classes`` (names or ids; ValueError names an unknown one)."""
        keep = self.scores >= min_score
        if class_ids is not None:
            keep &= np.isin(self.class_ids, np.asarray(class_ids, np.int64))
        if classes is not None:
            keep &= np.isin(self.class_ids, np.asarray(resolve_classes(classes, self.class_names), np.int64))
        return self[keep]

    def with_track_ids(self, track_ids: Sequence[int] | np.ndarray) -> "Detections":
        """A copy whose rows carry ``track_ids`` (M,) (the layout becomes :data:`TRACKED_DTYPE`)."""
        ids = np.asarray(track_ids)
        if ids.shape != (len(self),):
            raise ValueError(f"need one track id per detection ({len(self)}), got shape {ids.shape}")
        data = np.empty(len(self), TRACKED_DTYPE)
        for name in DETECTION_DTYPE.names:
            data[name] = self.data[name]
        data["track_id"] = ids
        return Detections(data, self.class_names, self.image_size, self.timing)

    def to_supervision(self) -> "supervision.Detections":
        """The same detections as a ``supervision.Detections`` (xyxy, confidence, class_id,
        tracker_id, ``data["class_name"]``), for its annotators and zones. supervision is not a
        dependency: ImportError with the install line if it is missing."""
        try:
            import supervision as sv
        except ImportError as e:
            raise ImportError("Detections.to_supervision() needs the supervision package: pip install supervision") from e
        ids = self.track_ids
        return sv.Detections(
            xyxy=self.boxes.astype(np.float32), confidence=self.scores.copy(), class_id=self.class_ids.astype(int),
            tracker_id=None if ids is None else ids.astype(int), data={"class_name": np.array(self.labels, dtype=str)},
        )

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
                    **({} if d.track_id is None else {"track_id": d.track_id}),
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
            text = f"{det.class_name} {det.score:.2f}" if show_score else det.class_name
            color = _color(det.class_id)
            if det.track_id is not None:
                color = track_color(det.track_id)  # one colour per identity, not per class
                text = f"#{det.track_id} {text}"
            x1, y1, x2, y2 = (int(round(v)) for v in det.box)
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            ty = y1 - 3 if y1 - th - base - 3 >= 0 else min(y1 + th + base + 3, h - 1)
            tx = max(0, min(x1, w - tw - 1))
            cv2.rectangle(out, (tx, ty - th - base), (tx + tw + 2, ty + 1), color, cv2.FILLED)
            cv2.putText(out, text, (tx + 1, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
        return out


def resolve_classes(classes: Sequence[str | int], class_names: Sequence[str]) -> list[int]:
    """Class names or ids → ids into ``class_names``; ValueError names one the model lacks."""
    if isinstance(classes, (str, int)):
        classes = [classes]
    ids = []
    for c in classes:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < len(class_names):
            ids.append(int(c))
        elif isinstance(c, str) and c in class_names:
            ids.append(list(class_names).index(c))
        else:
            raise ValueError(f"unknown class {c!r}: the model has {', '.join(class_names)} (ids 0..{len(class_names) - 1})")
    return ids
