"""Result sinks: write each frame's detections while streaming, in a format the next tool reads.

=============  ====================================================================================
JsonlSink      one JSON object a line: frame, time, image size, detections (box, score, class,
               track id), zone counts
CsvSink        one row per detection: frame, time, track_id, class_id, class_name, score, x1..y2,
               then one column per zone count (``<zone>.inside``, ``<line>.in``, ``<line>.out``)
CocoSink       a COCO results array (``image_id``, ``category_id``, ``bbox`` x, y, w, h, ``score``)
               that pycocotools ``COCO.loadRes`` reads
YoloTxtSink    a folder with one ``frame_NNNNNN.txt`` per frame: ``class cx cy w h score [track]``,
               box normalised to 0..1 (Ultralytics' ``save_txt`` with ``save_conf``)
=============  ====================================================================================

Each is a stream stage (``sink(result)`` writes and returns the result, :func:`padet_sdk.stream`
closes it at the end) and can be used by hand: call it on FrameResults, then :meth:`Sink.close`
(or use ``with``). Numbers are written with the shortest text that reads back to the same
float32, so a file parses back to exactly the values in memory. ``time`` is the video time
(index / source FPS) for files, seconds since the stream started for live sources.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .errors import SourceError

if TYPE_CHECKING:
    from .frame_result import FrameResult


def f32(values: np.ndarray) -> list[float]:
    """Floats that print as the shortest decimal of each float32 (json/csv round-trip exactly)."""
    return [float(str(v)) for v in np.asarray(values, np.float32).ravel()]


def _open(path: Path, newline: str | None = None) -> IO[str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", newline=newline)
    except OSError as e:
        raise SourceError(f"cannot write {path}: {e.strerror or e}") from e


class Sink:
    """Base class: a stage that writes every :class:`~padet_sdk.stream.FrameResult` it is given."""

    path: Path

    def write(self, result: "FrameResult") -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, result: "FrameResult") -> "FrameResult":
        self.write(result)
        return result

    def close(self) -> None:
        """Finish the file (idempotent)."""

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class _FileSink(Sink):
    def __init__(self, path: str | os.PathLike[str], newline: str | None = None) -> None:
        self.path = Path(path)
        self._f: IO[str] | None = _open(self.path, newline)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class JsonlSink(_FileSink):
    """JSON lines, one frame each (see the module table)."""

    def write(self, result: "FrameResult") -> None:
        d = result.detections
        ids = d.track_ids
        h, w = d.image_size
        boxes, scores = f32(d.boxes), f32(d.scores)
        rec = {
            "frame": result.index,
            "time": round(result.time_s, 6),
            "image_size": {"height": int(h), "width": int(w)},
            "detections": [
                {"box": boxes[4 * k : 4 * k + 4], "score": scores[k], "class_id": c, "class_name": d.class_names[c],
                 **({} if ids is None else {"track_id": int(ids[k])})}
                for k, c in enumerate(d.class_ids.tolist())
            ],
            "zones": result.zone_counts,
        }  # fmt: skip
        assert self._f is not None, "write after close"
        self._f.write(json.dumps(rec) + "\n")


#: the CSV columns every row has, before the zone columns
CSV_COLUMNS = ("frame", "time", "track_id", "class_id", "class_name", "score", "x1", "y1", "x2", "y2")


def zone_columns(zone_counts: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Flat ``{"<zone>.inside": n, "<line>.in": n, "<line>.out": n}`` of ``FrameResult.zone_counts``."""
    return {f"{name}.{key}": int(v) for name, c in zone_counts.items() for key, v in c.items() if key != "per_class"}


class CsvSink(_FileSink):
    """One row per detection (see the module table). A frame without detections gets one row with
    empty detection fields, so that every frame and its zone counts are in the file. The zone
    columns are those of the first frame; ``track_id`` is empty when untracked."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, newline="")
        self._writer = csv.writer(self._f)  # type: ignore[arg-type]
        self._zones: list[str] | None = None

    def write(self, result: "FrameResult") -> None:
        zones = zone_columns(result.zone_counts)
        if self._zones is None:
            self._zones = list(zones)
            self._writer.writerow([*CSV_COLUMNS, *self._zones])
        tail = [zones.get(k, "") for k in self._zones]
        head = [result.index, round(result.time_s, 6)]
        d = result.detections
        if not len(d):
            self._writer.writerow([*head, "", "", "", "", "", "", "", "", *tail])
            return
        ids = d.track_ids
        boxes, scores = f32(d.boxes), f32(d.scores)
        rows = [
            [*head, "" if ids is None else int(ids[k]), c, d.class_names[c], scores[k], *boxes[4 * k : 4 * k + 4], *tail]
            for k, c in enumerate(d.class_ids.tolist())
        ]
        self._writer.writerows(rows)


class CocoSink(_FileSink):
    """A COCO results JSON array, written as frames arrive (``]`` on close).

    Args:
        image_id_offset: ``image_id`` = frame index + this (1: COCO ids start at 1, as in the
            synthetic clip's ground truth, :mod:`training.data.synth_clip`).
        category_ids: ``category_id`` of each class id (default class id + 1, the order of the
            model's class names).
    """

    def __init__(self, path: str | os.PathLike[str], image_id_offset: int = 1, category_ids: list[int] | None = None) -> None:
        super().__init__(path)
        self.image_id_offset = int(image_id_offset)
        self.category_ids = category_ids
        self._first = True
        assert self._f is not None
        self._f.write("[")

    def write(self, result: "FrameResult") -> None:
        d = result.detections
        xywh = d.boxes.astype(np.float64)
        xywh[:, 2:] -= xywh[:, :2]  # the exact float32 values, as in-memory evaluation builds them
        cats = d.class_ids + 1 if self.category_ids is None else np.asarray(self.category_ids)[d.class_ids]
        image_id = result.index + self.image_id_offset
        assert self._f is not None, "write after close"
        for box, s, c in zip(xywh.tolist(), d.scores.astype(np.float64).tolist(), cats.tolist()):
            self._f.write(("\n" if self._first else ",\n") + json.dumps({"image_id": image_id, "category_id": int(c), "bbox": box, "score": s}))
            self._first = False

    def close(self) -> None:
        if self._f is not None:
            self._f.write("\n]\n")
        super().close()


class YoloTxtSink(Sink):
    """One text file per frame in a folder (see the module table); frames without detections
    get an empty file, so the files line up with the frames."""

    def __init__(self, folder: str | os.PathLike[str], with_score: bool = True) -> None:
        self.path = Path(folder)
        self.with_score = with_score
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SourceError(f"cannot create the folder {self.path}: {e.strerror or e}") from e

    def write(self, result: "FrameResult") -> None:
        d = result.detections
        h, w = d.image_size
        xywhn = f32(d.xywh / np.array([w, h, w, h], np.float32))
        scores, ids = f32(d.scores), d.track_ids
        lines = []
        for k, c in enumerate(d.class_ids.tolist()):
            cols = [str(c), *map(str, xywhn[4 * k : 4 * k + 4])]
            if self.with_score:
                cols.append(str(scores[k]))
            if ids is not None:
                cols.append(str(int(ids[k])))
            lines.append(" ".join(cols))
        (self.path / f"frame_{result.index:06d}.txt").write_text("".join(line + "\n" for line in lines))


def sink_for(path: str | os.PathLike[str], kind: str) -> Sink:
    """The sink of a CLI flag: ``kind`` is "json" (JSON lines), "csv", "coco" or "txt" (a folder)."""
    kinds = {"json": JsonlSink, "csv": CsvSink, "coco": CocoSink, "txt": YoloTxtSink}
    if kind not in kinds:
        raise ValueError(f"sink kind must be one of {', '.join(kinds)}, got {kind!r}")
    return kinds[kind](path)


__all__ = ["CSV_COLUMNS", "CocoSink", "CsvSink", "JsonlSink", "Sink", "YoloTxtSink", "f32", "sink_for", "zone_columns"]
